package bgp

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// probeMD5 asks the kernel to install the TCP-MD5 (RFC 2385) key for addr
// on a throwaway socket of addr's family, the way the speaker will on its
// listener and its outgoing connections. It fails when the kernel cannot
// (no CONFIG_TCP_MD5SIG, net.core.optmem_max exhausted, a seccomp or LSM
// policy), so that the observer refuses the session instead of running it
// unauthenticated. The error never carries the key.
func probeMD5(addr netip.Addr, key string) error {
	fam := unix.AF_INET6
	if addr.Is4() {
		fam = unix.AF_INET
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return fmt.Errorf("probe socket: %w", err)
	}
	defer unix.Close(fd)
	sig := unix.TCPMD5Sig{Keylen: uint16(len(key))}
	if len(key) > len(sig.Key) {
		return fmt.Errorf("key longer than %d bytes", len(sig.Key))
	}
	copy(sig.Key[:], key)
	// struct sockaddr_storage as the kernel reads it: family, then the
	// port (zero) and the address at the offsets of sockaddr_in(6).
	sig.Addr.Family = uint16(fam)
	if addr.Is4() {
		a := addr.As4()
		copy(sig.Addr.Data[2:], a[:])
	} else {
		a := addr.As16()
		copy(sig.Addr.Data[6:], a[:])
	}
	if err := unix.SetsockoptTCPMD5Sig(fd, unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig); err != nil {
		return fmt.Errorf("setsockopt TCP_MD5SIG: %w", err)
	}
	return nil
}
