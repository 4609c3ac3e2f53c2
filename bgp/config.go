package bgp

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
)

// Defaults of the bgp section.
const (
	DefaultListenPort       = 1179
	DefaultEstablishTimeout = 30 * time.Second
	DefaultHoldTime         = 90
	DefaultMaxPrefixes      = 1_000_000
	// privilegedPort is the standard BGP port; binding it needs root or
	// CAP_NET_BIND_SERVICE.
	privilegedPort = 179
)

// Address families a peer can negotiate.
const (
	FamilyIPv4Unicast = "ipv4-unicast"
	FamilyIPv6Unicast = "ipv6-unicast"
)

// Config is the `bgp` section of the configuration.
type Config struct {
	// LocalASN is the observer's own AS number.
	LocalASN uint32 `json:"localASN"`
	// RouterID is the observer's BGP identifier (an IPv4 address).
	RouterID string `json:"routerID"`
	// ListenAddress restricts the listener to one local address; empty
	// listens on all addresses.
	ListenAddress string `json:"listenAddress,omitempty"`
	// ListenPort is the TCP port for passive sessions (default 1179, so the
	// observer runs unprivileged); 179 needs CAP_NET_BIND_SERVICE; -1 opens
	// no listener (every peer must then be active).
	ListenPort int32 `json:"listenPort,omitempty"`
	// EstablishTimeout bounds how long a one-shot diagnosis waits for every
	// session to be Established and send End-of-RIB (default 30s).
	EstablishTimeout diag.Duration `json:"establishTimeout,omitempty"`
	// Peers are the routers to observe.
	Peers []PeerConfig `json:"peers"`
	// CloudPrefixes are the VPC / vSwitch CIDRs the on-prem side must have
	// learned; 100.64.0.0/10 is always added.
	CloudPrefixes []string `json:"cloudPrefixes,omitempty"`
	// ServiceAddresses are cloud service addresses named when a cloud
	// prefix is not covered (default the VPC DNS 100.100.2.136, .138).
	ServiceAddresses []string `json:"serviceAddresses,omitempty"`

	norm *settings
}

// PeerConfig is one observed router.
type PeerConfig struct {
	// Name labels the peer in reports; default its address.
	Name string `json:"name,omitempty"`
	// Address is the router's IP address.
	Address string `json:"address"`
	// Port is the router's BGP port, used when the observer dials (default 179).
	Port uint16 `json:"port,omitempty"`
	// ASN is the router's AS number.
	ASN uint32 `json:"asn"`
	// Password is the TCP MD5 (RFC 2385) password. It never appears in
	// logs, reports or errors.
	Password string `json:"password,omitempty"`
	// PasswordFile is a file holding the password instead (a mounted
	// Secret), read once when the configuration is validated, surrounding
	// white space trimmed. Errors name the file, never its content.
	PasswordFile string `json:"passwordFile,omitempty"`
	// Passive makes the observer wait for the router to connect.
	Passive bool `json:"passive,omitempty"`
	// Multihop is the eBGP multihop TTL (0: directly connected).
	Multihop uint8 `json:"multihop,omitempty"`
	// HoldTime in seconds (default 90; 0 disables keepalives, else >= 3).
	HoldTime *uint32 `json:"holdTime,omitempty"`
	// Families to negotiate: ipv4-unicast (default), ipv6-unicast.
	Families []string `json:"families,omitempty"`
	// MaxPrefixes caps the routes accepted per family (default 1,000,000);
	// a router sending more is cut off and reported, the run goes on.
	MaxPrefixes uint32 `json:"maxPrefixes,omitempty"`
}

// Validate checks the section without touching the network. Messages name
// the field, as `peers[1].asn: ...`. Addresses are compared in canonical
// form (an IPv4-mapped IPv6 address is the IPv4 address), so one router
// cannot be listed twice under two spellings.
func (c *Config) Validate() error {
	passwords, err := c.validate()
	if err != nil {
		return err
	}
	c.norm = c.build(passwords)
	return nil
}

// maxPasswordFile bounds what is read of a password file: a TCP MD5 key
// is at most 80 bytes, so anything much longer is the wrong file.
const maxPasswordFile = 4096

// readPasswordFile returns the trimmed content of a password file. Its
// errors name the file and never quote what is in it.
func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", err // *fs.PathError: names the file
	}
	if len(b) > maxPasswordFile {
		return "", fmt.Errorf("%s: larger than %d bytes, not a password", path, maxPasswordFile)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return pw, nil
}

// validate names every field that is wrong, and returns each peer's
// password (read from its passwordFile where one is given).
func (c *Config) validate() ([]string, error) {
	var errs []error
	passwords := make([]string, len(c.Peers))
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.LocalASN == 0 {
		add("localASN: must be set (1-4294967295)")
	}
	if a, err := cloudnet.ParseAddr(c.RouterID); err != nil || !a.Is4() || a.IsUnspecified() {
		add("routerID: %q is not an IPv4 address like 192.0.2.1", c.RouterID)
	}
	var listen netip.Addr
	if c.ListenAddress != "" {
		a, err := cloudnet.ParseAddr(c.ListenAddress)
		if err != nil {
			add("listenAddress: %v", err)
		} else {
			listen = a
		}
	}
	if c.ListenPort < -1 || c.ListenPort > 65535 {
		add("listenPort: %d is not a port (1-65535, 0 for the default %d, -1 for no listener)", c.ListenPort, DefaultListenPort)
	}
	if len(c.Peers) == 0 {
		add("peers: at least one peer is needed")
	}
	seen := map[netip.Addr]int{}
	for i, p := range c.Peers {
		f := fmt.Sprintf("peers[%d]", i)
		if a, err := cloudnet.ParseAddr(p.Address); err != nil {
			add("%s.address: %v", f, err)
		} else if j, dup := seen[a]; dup {
			add("%s.address: %s is already peers[%d]", f, a, j)
		} else {
			seen[a] = i
			if listen.IsValid() && a.Is4() != listen.Is4() {
				// listenAddress is also the source of every session the
				// observer dials; the kernel cannot mix families.
				add("%s.address: %s is %s but listenAddress %s is %s", f, a, family(a), listen, family(listen))
			}
		}
		if p.ASN == 0 {
			add("%s.asn: must be set (1-4294967295)", f)
		}
		if p.Passive && c.ListenPort == -1 {
			add("%s.passive: a passive peer needs a listener, but listenPort is -1", f)
		}
		passwords[i] = p.Password
		pwField := "password"
		if p.PasswordFile != "" {
			pwField = "passwordFile"
			if p.Password != "" {
				add("%s: password and passwordFile are mutually exclusive: give one", f)
			} else if pw, err := readPasswordFile(p.PasswordFile); err != nil {
				add("%s.passwordFile: %v", f, err)
			} else {
				passwords[i] = pw
			}
		}
		if len(passwords[i]) > 80 {
			// Linux limits TCP MD5 keys to 80 bytes; the length is not secret.
			add("%s.%s: longer than 80 bytes (%d)", f, pwField, len(passwords[i]))
		}
		if p.HoldTime != nil && *p.HoldTime != 0 && (*p.HoldTime < 3 || *p.HoldTime > 65535) {
			add("%s.holdTime: %d is not 0 or 3-65535 seconds", f, *p.HoldTime)
		}
		fams := map[string]bool{}
		for _, fam := range p.Families {
			switch fam {
			case FamilyIPv4Unicast, FamilyIPv6Unicast:
			default:
				add("%s.families: %q is not %s or %s", f, fam, FamilyIPv4Unicast, FamilyIPv6Unicast)
			}
			if fams[fam] {
				add("%s.families: %q is listed twice", f, fam)
			}
			fams[fam] = true
		}
	}
	for i, s := range c.CloudPrefixes {
		if p, err := netip.ParsePrefix(s); err != nil {
			add("cloudPrefixes[%d]: %q is not a CIDR", i, s)
		} else if p.Masked() != p {
			add("cloudPrefixes[%d]: %q has host bits set (did you mean %s?)", i, s, p.Masked())
		}
	}
	for i, s := range c.ServiceAddresses {
		if _, err := cloudnet.ParseAddr(s); err != nil {
			add("serviceAddresses[%d]: %v", i, err)
		}
	}
	return passwords, errors.Join(errs...)
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// settings is a validated Config with defaults applied.
type settings struct {
	localASN         uint32
	routerID         string
	listenAddress    string
	listenPort       int32
	establishTimeout time.Duration
	peers            []peerSettings
	cloudPrefixes    []netip.Prefix
	serviceAddresses []netip.Addr
}

type peerSettings struct {
	name        string
	address     netip.Addr
	port        uint16
	asn         uint32
	password    string
	passive     bool
	multihop    uint8
	holdTime    uint32
	families    []string
	maxPrefixes uint32
}

// settings returns the normalised settings Validate made, validating now
// if it has not run.
func (c *Config) settings() (*settings, error) {
	if c.norm == nil {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("bgp: %w", err)
		}
	}
	return c.norm, nil
}

// build applies the defaults to a validated Config.
func (c *Config) build(passwords []string) *settings {
	s := &settings{
		localASN:         c.LocalASN,
		routerID:         mustParseAddr(c.RouterID).String(),
		listenPort:       c.ListenPort,
		establishTimeout: DefaultEstablishTimeout,
	}
	if c.ListenAddress != "" {
		s.listenAddress = mustParseAddr(c.ListenAddress).String()
	}
	if s.listenPort == 0 {
		s.listenPort = DefaultListenPort
	}
	if c.EstablishTimeout > 0 {
		s.establishTimeout = c.EstablishTimeout.D()
	}
	for i, p := range c.Peers {
		ps := peerSettings{
			name:        p.Name,
			address:     mustParseAddr(p.Address),
			port:        p.Port,
			asn:         p.ASN,
			password:    passwords[i],
			passive:     p.Passive,
			multihop:    p.Multihop,
			holdTime:    DefaultHoldTime,
			families:    p.Families,
			maxPrefixes: p.MaxPrefixes,
		}
		if ps.name == "" {
			ps.name = ps.address.String()
		}
		if p.HoldTime != nil {
			ps.holdTime = *p.HoldTime
		}
		if len(ps.families) == 0 {
			ps.families = []string{FamilyIPv4Unicast}
		}
		if ps.maxPrefixes == 0 {
			ps.maxPrefixes = DefaultMaxPrefixes
		}
		s.peers = append(s.peers, ps)
	}
	s.cloudPrefixes = append(s.cloudPrefixes, cloudnet.CGNAT)
	for _, cp := range c.CloudPrefixes {
		p := netip.MustParsePrefix(cp)
		if p != cloudnet.CGNAT {
			s.cloudPrefixes = append(s.cloudPrefixes, p)
		}
	}
	sa := c.ServiceAddresses
	if len(sa) == 0 {
		sa = cloudnet.VPCDNSStrings()
	}
	for _, a := range sa {
		s.serviceAddresses = append(s.serviceAddresses, mustParseAddr(a))
	}
	return s
}

// mustParseAddr is parseAddr for input Validate has accepted.
func mustParseAddr(s string) netip.Addr {
	a, err := cloudnet.ParseAddr(s)
	if err != nil {
		panic("bgp: unvalidated address: " + err.Error())
	}
	return a
}
