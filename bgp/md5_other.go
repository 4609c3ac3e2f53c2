//go:build !linux

package bgp

import (
	"errors"
	"net/netip"
)

// probeMD5 fails closed off Linux: the observer only knows how to check
// the kernel's TCP-MD5 support there.
func probeMD5(netip.Addr, string) error {
	return errors.New("TCP-MD5 is only supported on Linux")
}
