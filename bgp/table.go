package bgp

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vnodediag/vnodediag/diag/cloudnet"
)

// Table is the BGP source of one run: every observed session and the routes
// received on it. It is a copy; the observer goes on without it.
type Table struct {
	// Peers in configuration order.
	Peers []PeerStatus
	// Routes received from Established peers (Adj-RIB-In, before any
	// policy: the observer imports everything it is sent).
	Routes []Route
	// CloudPrefixes must be covered by Routes (100.64.0.0/10 first).
	CloudPrefixes []netip.Prefix
	// ServiceAddresses are named when the prefix holding them is uncovered.
	ServiceAddresses []netip.Addr
	// Listener describes where the observer accepts passive sessions.
	Listener string
	// LocalASN, LocalAddress and ListenPort describe the observer, for the
	// router configuration a failed session needs (LocalAddress may be "").
	LocalASN     uint32
	LocalAddress string
	ListenPort   int32
	// ExportPolicy is the default action of the observer's global export
	// policy: REJECT, so that no route is ever sent.
	ExportPolicy string
	// Taken is when the table was read.
	Taken time.Time

	setOnce sync.Once
	set     *cloudnet.PrefixSet
}

// PeerStatus is one session as the observer saw it.
type PeerStatus struct {
	Name    string
	Address netip.Addr
	ASN     uint32
	Passive bool
	// State is the FSM state: IDLE, CONNECT, ACTIVE, OPENSENT,
	// OPENCONFIRM, ESTABLISHED.
	State string
	// Since is when the session became Established (zero when it is not).
	Since time.Time
	// Flaps counts transitions out of Established.
	Flaps int
	// LastError is the last reason the session failed or went down
	// (connection refused, hold timer expired, NOTIFICATION received ...).
	LastError   string
	LastErrorAt time.Time
	// Families negotiated or configured, with counters.
	Families []FamilyStatus
	// MaxPrefixes is the configured limit per family.
	MaxPrefixes uint32
	// MaxPrefixExceeded is set once the router sent more than MaxPrefixes
	// routes and the observer cut the session.
	MaxPrefixExceeded bool
	// NotStarted says why the observer refused to start the session (its
	// TCP-MD5 key could not be set); empty when it was started.
	NotStarted string
}

// Established reports whether the session is up.
func (p *PeerStatus) Established() bool { return p.State == "ESTABLISHED" }

// carriesRoutes reports whether the routes received on the session count:
// it is up and was not cut for sending more than MaxPrefixes. The speaker
// says it cuts the session a moment before the session leaves
// Established; in between its routes are already void.
func (p *PeerStatus) carriesRoutes() bool { return p.Established() && !p.MaxPrefixExceeded }

// Label is "name (address)" or the address alone.
func (p *PeerStatus) Label() string {
	if p.Name != "" && p.Name != p.Address.String() {
		return fmt.Sprintf("%s (%s)", p.Name, p.Address)
	}
	return p.Address.String()
}

// Received is the number of routes received over all families.
func (p *PeerStatus) Received() uint64 {
	var n uint64
	for _, f := range p.Families {
		n += f.Received
	}
	return n
}

// FamilyStatus is one address family of a session.
type FamilyStatus struct {
	Family   string
	Received uint64
	Accepted uint64
	// EndOfRIB is set when the router said its initial table is complete.
	EndOfRIB bool
}

// Route is one received route.
type Route struct {
	Prefix netip.Prefix
	// Peer is the name of the session it came from.
	Peer string
}

// Describe is the source's one-line description in the report.
func (t *Table) Describe() string {
	up := 0
	for _, p := range t.Peers {
		if p.Established() {
			up++
		}
	}
	return fmt.Sprintf("%d of %d BGP sessions established, %d routes received", up, len(t.Peers), len(t.Routes))
}

// Set returns the routes as a cloudnet.PrefixSet whose values index Routes, built
// once on first use (checks share it concurrently).
func (t *Table) Set() *cloudnet.PrefixSet {
	t.setOnce.Do(func() {
		s := cloudnet.NewPrefixSetSize(len(t.Routes))
		for i, r := range t.Routes {
			s.Insert(r.Prefix, int32(i))
		}
		t.set = s
	})
	return t.set
}
