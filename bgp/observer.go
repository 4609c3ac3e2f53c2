package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/vnodediag/vnodediag/diag"
)

// connectRetry is the seconds between the observer's connection attempts
// (gobgp's default is 120 s, far too slow for a diagnosis).
const connectRetry = 2

var families = map[string]*api.Family{
	FamilyIPv4Unicast: {Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
	FamilyIPv6Unicast: {Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
}

func familyName(f *api.Family) string {
	for n, v := range families {
		if v.Afi == f.GetAfi() && v.Safi == f.GetSafi() {
			return n
		}
	}
	return fmt.Sprintf("afi-%d-safi-%d", f.GetAfi(), f.GetSafi())
}

// Observer is the passive monitoring speaker. It advertises nothing: the
// global export policy is REJECT before the first peer is added, and no
// path is ever added.
type Observer struct {
	s   *settings
	log *slog.Logger

	// startMu serialises Start and Stop; mu guards the rest and is never
	// held across a call into the speaker (whose log lines call back in).
	startMu sync.Mutex
	mu      sync.Mutex
	srv     *server.BgpServer
	cancel  context.CancelFunc
	peers   map[netip.Addr]*peerTrack
	changed chan struct{} // closed and replaced on every state change
	bmp     *bmpStation
	// streamUp is whether the speaker's BMP stream is feeding the route
	// copy; streamErr is why the last one ended.
	streamUp  bool
	streamErr error
}

// peerTrack is what the observer remembers about a session between reads.
type peerTrack struct {
	cfg         peerSettings
	state       string
	since       time.Time
	flaps       int
	lastError   string
	lastErrorAt time.Time
	eor         map[string]bool
	pfxExceeded bool
	// md5Err is set when the speaker could not install the peer's TCP-MD5
	// key; notStarted says why the observer refused to run the session.
	md5Err     error
	notStarted string
	// routes is the peer's Adj-RIB-In as the watch stream built it.
	routes map[netip.Prefix]struct{}
}

// NewObserver validates cfg; Start starts the speaker.
func NewObserver(cfg *Config, logger *slog.Logger) (*Observer, error) {
	if cfg == nil {
		return nil, errors.New("bgp: no configuration")
	}
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &Observer{s: s, log: logger, peers: map[netip.Addr]*peerTrack{}, changed: make(chan struct{})}
	for _, p := range s.peers {
		o.peers[p.address] = &peerTrack{cfg: p, state: "IDLE", eor: map[string]bool{}, routes: map[netip.Prefix]struct{}{}}
	}
	return o, nil
}

// Listener is where the observer accepts passive sessions, or "none".
func (o *Observer) Listener() string {
	if o.s.listenPort < 0 {
		return "none (active sessions only)"
	}
	host := o.s.listenAddress
	if host == "" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(o.s.listenPort)))
}

// md5Check is how Start asks the kernel whether a peer's TCP-MD5 key can
// be set (a variable so that a test can let a peer through to the
// speaker's own setsockopt on its listener).
var md5Check = probeMD5

// Start starts the speaker, sets the REJECT export policy and adds the
// peers. It returns once the peers are configured; sessions come up in the
// background. A peer with a password whose TCP-MD5 key the kernel refuses
// is not started at all (its session reads as not started, with why):
// without the key the session would run unauthenticated. An ended ctx
// stops Start before the next peer is added.
func (o *Observer) Start(ctx context.Context) error {
	o.startMu.Lock()
	defer o.startMu.Unlock()
	o.mu.Lock()
	running := o.srv != nil
	o.mu.Unlock()
	if running {
		return errors.New("bgp observer already started")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bgp observer: not started: %w", err)
	}
	lg := &gobgpLogger{log: o.log, onPeerError: o.peerError, onPrefixLimit: o.prefixLimit, onMD5Failure: o.md5Failure}
	srv := server.NewBgpServer(server.LoggerOption(lg))
	go srv.Serve()
	var st *bmpStation
	cancel := func() {}
	fail := func(err error) error {
		cancel()
		stopSpeaker(srv, st, o.log)
		return err
	}
	g := &api.Global{Asn: o.s.localASN, RouterId: o.s.routerID, ListenPort: o.s.listenPort}
	if o.s.listenAddress != "" {
		g.ListenAddresses = []string{o.s.listenAddress}
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		return fail(o.listenError(err))
	}
	// StartBgp re-initialises the policies, so REJECT goes after it and
	// before any peer exists: no peer ever sees an UPDATE from us.
	if err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT,
	}}); err != nil {
		return fail(fmt.Errorf("bgp observer: set export policy REJECT: %w", err))
	}
	// IMPORT REJECT keeps received routes out of the global RIB: the
	// observer never forwards, so best-path selection for every received
	// route would be wasted work. The Adj-RIB-In (and the watch below) still
	// see every route, before policy.
	if err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_IMPORT, DefaultAction: api.RouteAction_REJECT,
	}}); err != nil {
		return fail(fmt.Errorf("bgp observer: set import policy REJECT: %w", err))
	}
	// Routes arrive over BMP (see bmp.go), states and End-of-RIB over a
	// watch; both are set up before the first peer exists.
	var err error
	if st, err = newBMPStation(o.log); err != nil {
		return fail(err)
	}
	st.start(o)
	if err := srv.AddBmp(ctx, &api.AddBmpRequest{Address: "127.0.0.1", Port: st.port(), Policy: api.AddBmpRequest_PRE,
		SysName: "vnodediag", SysDescr: st.token, StatisticsTimeout: bmpStatsInterval}); err != nil {
		st.close()
		st = nil
		return fail(fmt.Errorf("bgp observer: add bmp station: %w", err))
	}
	wctx, wcancel := context.WithCancel(context.Background())
	cancel = wcancel
	err = srv.WatchEvent(wctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_EOR},
		}},
	}, o.event)
	if err != nil {
		return fail(fmt.Errorf("bgp observer: watch events: %w", err))
	}
	for _, p := range o.s.peers {
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("bgp observer: not started: %w", err))
		}
		if err := o.addPeer(ctx, srv, p); err != nil {
			return fail(err)
		}
	}
	o.mu.Lock()
	o.srv, o.cancel, o.bmp = srv, wcancel, st
	o.mu.Unlock()
	o.log.Info("bgp observer started", "asn", o.s.localASN, "router_id", o.s.routerID, "listen", o.Listener(), "peers", len(o.s.peers))
	return nil
}

// addPeer configures one peer. A peer with a password goes in
// administratively down and is enabled only once its TCP-MD5 key is known
// to be on the listener: gobgp merely logs a failure to set the key and
// would then accept that peer's connections unauthenticated.
func (o *Observer) addPeer(ctx context.Context, srv *server.BgpServer, p peerSettings) error {
	if p.password != "" {
		if err := md5Check(p.address, p.password); err != nil {
			o.refuse(p, err)
			return nil
		}
	}
	ap := o.apiPeer(p)
	if p.password != "" {
		ap.Conf.AdminDown = true
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: ap}); err != nil {
		// gobgp's errors name the address, never the password.
		return fmt.Errorf("bgp observer: add peer %s: %w", p.name, err)
	}
	if p.password == "" {
		return nil
	}
	// gobgp logs the listener's setsockopt failure from inside AddPeer,
	// so it has been seen by now (see gobgpLogger.onMD5Failure).
	o.mu.Lock()
	md5Err := o.peers[p.address].md5Err
	o.mu.Unlock()
	if md5Err != nil {
		if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.address.String()}); err != nil {
			return fmt.Errorf("bgp observer: remove peer %s after its TCP-MD5 key was refused: %w", p.name, err)
		}
		o.refuse(p, md5Err)
		return nil
	}
	if err := srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: p.address.String()}); err != nil {
		return fmt.Errorf("bgp observer: enable peer %s: %w", p.name, err)
	}
	return nil
}

// refuse records that p's session is not started because its TCP-MD5 key
// could not be set.
func (o *Observer) refuse(p peerSettings, err error) {
	why := fmt.Sprintf("the kernel refused the TCP-MD5 key for %s (%v); the observer does not run a session that has a password without it", p.address, err)
	if errors.Is(err, syscall.ENOPROTOOPT) {
		why += ". The speaker's listener is a Multipath TCP socket (Go's default for listeners since 1.24), which cannot carry " +
			"TCP-MD5: run vnodediag with GODEBUG=multipathtcp=0 (its build sets this; an environment setting overrides it)"
	}
	o.log.Error("bgp peer not started: its TCP-MD5 key could not be set", "peer", p.name, "error", err)
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.peers[p.address]
	t.notStarted, t.lastError, t.lastErrorAt = why, why, time.Now()
	o.notifyLocked()
}

func (o *Observer) md5Failure(addr string, err error) {
	a, perr := netip.ParseAddr(addr)
	if perr != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if t := o.peers[a.Unmap()]; t != nil && t.md5Err == nil {
		t.md5Err = err
	}
}

func (o *Observer) listenError(err error) error {
	msg := err.Error()
	if o.s.listenPort > 0 && o.s.listenPort < 1024 && (errors.Is(err, syscall.EACCES) || strings.Contains(msg, "permission denied")) {
		return fmt.Errorf("bgp observer: listen on %s: %s: ports below 1024 need root or CAP_NET_BIND_SERVICE "+
			"(setcap cap_net_bind_service=+ep on the binary, or AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit); "+
			"or set bgp.listenPort to %d and point the router at that port", o.Listener(), msg, DefaultListenPort)
	}
	return fmt.Errorf("bgp observer: listen on %s: %s", o.Listener(), msg)
}

func (o *Observer) apiPeer(p peerSettings) *api.Peer {
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.address.String(),
			PeerAsn:         p.asn,
			AuthPassword:    p.password,
			Description:     p.name,
		},
		Transport: &api.Transport{PassiveMode: p.passive, RemotePort: uint32(p.port)},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      connectRetry,
			HoldTime:          uint64(p.holdTime),
			KeepaliveInterval: uint64(p.holdTime / 3),
		}},
		// Announcing the graceful-restart capability (as a helper only)
		// makes routers send End-of-RIB, which is how a one-shot run knows
		// the table is complete instead of guessing from a quiet period.
		GracefulRestart: &api.GracefulRestart{Enabled: true, HelperOnly: true, RestartTime: 1},
	}
	if o.s.listenAddress != "" {
		ap.Transport.LocalAddress = o.s.listenAddress
	}
	if p.multihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.multihop)}
	}
	for _, f := range p.families {
		fam := families[f]
		ap.AfiSafis = append(ap.AfiSafis, &api.AfiSafi{
			Config:            &api.AfiSafiConfig{Family: fam, Enabled: true},
			PrefixLimits:      &api.PrefixLimit{Family: fam, MaxPrefixes: p.maxPrefixes},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
		})
	}
	return ap
}

// stopTimeout bounds Stop: the speaker finishes in the background after it.
const stopTimeout = 5 * time.Second

// Stop tears the sessions down and stops the speaker, waiting at most
// stopTimeout for it.
func (o *Observer) Stop() {
	o.startMu.Lock()
	defer o.startMu.Unlock()
	o.mu.Lock()
	srv, cancel, st := o.srv, o.cancel, o.bmp
	o.srv, o.cancel, o.bmp = nil, nil, nil
	o.mu.Unlock()
	if srv == nil {
		return
	}
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		stopSpeaker(srv, st, o.log)
	}()
	select {
	case <-done:
		o.log.Info("bgp observer stopped")
	case <-time.After(stopTimeout):
		o.log.Warn("bgp observer: the speaker did not stop in time; it finishes in the background", "waited", stopTimeout)
	}
}

// stopSpeaker removes the BMP client (StopBgp leaves it running, redialling
// the station for ever), stops every session and the listeners, then
// closes the station. gobgp's Serve loop has no way to end in v3.37.0 and
// stays parked, holding an empty server.
func stopSpeaker(srv *server.BgpServer, st *bmpStation, log *slog.Logger) {
	if st != nil {
		// The speaker's stream ends now on purpose, not as a failure.
		st.stopping()
		if err := srv.DeleteBmp(context.Background(), &api.DeleteBmpRequest{Address: "127.0.0.1", Port: st.port()}); err != nil {
			log.Warn("bgp observer: remove bmp station", "error", err)
		}
	}
	srv.Stop()
	if st != nil {
		st.close()
	}
}

// notifyLocked wakes WaitReady; o.mu must be held.
func (o *Observer) notifyLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *Observer) peerError(addr, reason string) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if t := o.peers[a]; t != nil {
		t.lastError, t.lastErrorAt = reason, time.Now()
	}
}

func (o *Observer) prefixLimit(addr string) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if t := o.peers[a]; t != nil && !t.pfxExceeded {
		t.pfxExceeded = true
		o.log.Warn("bgp peer exceeded the maximum prefix limit; session cut", "peer", t.cfg.name, "max_prefixes", t.cfg.maxPrefixes)
		o.notifyLocked()
	}
}

func (o *Observer) event(r *api.WatchEventResponse) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if pe := r.GetPeer(); pe != nil && pe.GetType() == api.WatchEventResponse_PeerEvent_STATE {
		a, err := netip.ParseAddr(pe.GetPeer().GetState().GetNeighborAddress())
		t := o.peers[a]
		if err != nil || t == nil {
			return
		}
		st := strings.TrimPrefix(pe.GetPeer().GetState().GetSessionState().String(), "SESSION_STATE_")
		if st == t.state {
			return
		}
		switch {
		case st == "ESTABLISHED":
			t.since = time.Now()
			t.eor = map[string]bool{}
			o.log.Info("bgp session established", "peer", t.cfg.name)
		case t.state == "ESTABLISHED":
			t.flaps++
			t.since = time.Time{}
			o.log.Warn("bgp session down", "peer", t.cfg.name, "state", st, "reason", t.lastError)
		}
		t.state = st
		o.notifyLocked()
	}
	for _, p := range r.GetTable().GetPaths() {
		a, err := netip.ParseAddr(p.GetNeighborIp())
		if t := o.peers[a]; err == nil && t != nil {
			t.eor[familyName(p.GetFamily())] = true
			o.notifyLocked()
		}
	}
}

// update implements bmpSink.
func (o *Observer) update(peer netip.Addr, announced, withdrawn []netip.Prefix) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.peers[peer]
	if t == nil {
		return
	}
	for _, p := range withdrawn {
		delete(t.routes, p)
	}
	for _, p := range announced {
		t.routes[p] = struct{}{}
	}
	o.notifyLocked()
}

// stream implements bmpSink.
func (o *Observer) stream(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		for _, t := range o.peers {
			clear(t.routes)
		}
		if o.streamErr != nil {
			o.log.Info("bgp observer: route stream from the speaker is back; tables are replayed")
		}
		o.streamUp, o.streamErr = true, nil
	} else {
		o.streamUp, o.streamErr = false, err
		o.log.Error("bgp observer: route stream from the speaker ended; the route copy is incomplete until it reconnects", "error", err)
	}
	o.notifyLocked()
}

// reset implements bmpSink.
func (o *Observer) reset(peer netip.Addr) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t := o.peers[peer]; t != nil {
		clear(t.routes)
		o.notifyLocked()
	}
}

// ready reports whether every session is Established and has sent
// End-of-RIB for every family, or cannot get there (prefix limit cut).
func (o *Observer) readyLocked() bool {
	for _, t := range o.peers {
		if t.pfxExceeded && t.state != "ESTABLISHED" {
			continue // cut for sending too much: nothing more will come
		}
		if t.notStarted != "" {
			continue // refused: nothing will come
		}
		if t.state != "ESTABLISHED" {
			return false
		}
		for _, f := range t.cfg.families {
			if !t.eor[f] {
				return false
			}
		}
	}
	return true
}

// WaitReady blocks until every session is Established with its initial
// table complete (End-of-RIB, and every route the speaker holds also in the
// observer's copy), or ctx ends; it returns ctx.Err() then.
//
// While it waits it reports each peer's state as the source's progress,
// on every change and every second: "dc-core: Active 4s/30s".
func (o *Observer) WaitReady(ctx context.Context) error {
	var tick <-chan time.Time
	report := diag.Reporting(ctx)
	start := time.Now()
	if report {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		o.mu.Lock()
		ok, ch := o.streamUp && o.readyLocked(), o.changed
		var msg string
		if report {
			msg = o.waitingLocked(ctx, start)
		}
		o.mu.Unlock()
		if report {
			diag.ReportProgress(ctx, diag.Progress{Kind: diag.SourceUpdate, Source: Source.Name(), Message: msg})
		}
		if ok && o.caughtUp(ctx) {
			return nil
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitingLocked is the progress line of WaitReady: each peer's name and
// FSM state, and how long the wait has taken of its budget.
func (o *Observer) waitingLocked(ctx context.Context, start time.Time) string {
	var parts []string
	for _, t := range o.peers {
		name := t.cfg.name
		if name == "" {
			name = t.cfg.address.String()
		}
		state := t.state
		if state == "" {
			state = "IDLE"
		}
		switch {
		case t.notStarted != "":
			state = "not started"
		case state == "ESTABLISHED" && len(t.cfg.families) > len(t.eor):
			state = "Established, waiting for End-of-RIB"
		default:
			state = strings.ToUpper(state[:1]) + strings.ToLower(state[1:])
		}
		parts = append(parts, name+": "+state)
	}
	sort.Strings(parts)
	waited := time.Since(start).Truncate(time.Second)
	budget := ""
	if dl, ok := ctx.Deadline(); ok {
		budget = "/" + dl.Sub(start).Round(time.Second).String()
	}
	return fmt.Sprintf("%s %s%s", strings.Join(parts, ", "), waited, budget)
}

// caughtUp reports whether the BMP copy holds as many routes as the
// speaker's Adj-RIB-In of every Established peer: End-of-RIB comes over the
// watch, the routes over BMP, and the two streams are not ordered.
func (o *Observer) caughtUp(ctx context.Context) bool {
	o.mu.Lock()
	srv := o.srv
	o.mu.Unlock()
	if srv == nil {
		return false
	}
	want := map[netip.Addr]int{}
	if err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress()); err == nil && p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
			for _, f := range p.GetAfiSafis() {
				want[a] += int(f.GetState().GetReceived())
			}
		}
	}); err != nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for a, n := range want {
		if t := o.peers[a]; t != nil && !t.pfxExceeded && len(t.routes) < n {
			return false
		}
	}
	return true
}

// Table reads the current sessions and the routes received on the
// Established ones.
func (o *Observer) Table(ctx context.Context) (*Table, error) {
	o.mu.Lock()
	srv := o.srv
	o.mu.Unlock()
	if srv == nil {
		return nil, errors.New("bgp observer is not running")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bgp observer: read table: %w", err)
	}
	t := &Table{CloudPrefixes: o.s.cloudPrefixes, ServiceAddresses: o.s.serviceAddresses, Listener: o.Listener(), Taken: time.Now(),
		LocalASN: o.s.localASN, LocalAddress: o.s.listenAddress, ListenPort: o.s.listenPort}
	state := map[netip.Addr]*api.Peer{}
	// EnableAdvertised would run the export policy over the whole table
	// for every read; the policy itself is read instead.
	if err := srv.ListPolicyAssignment(ctx, &api.ListPolicyAssignmentRequest{Name: "global", Direction: api.PolicyDirection_EXPORT},
		func(a *api.PolicyAssignment) { t.ExportPolicy = a.GetDefaultAction().String() }); err != nil {
		return nil, fmt.Errorf("bgp observer: read export policy: %w", err)
	}
	if err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress()); err == nil {
			state[a] = p
		}
	}); err != nil {
		return nil, fmt.Errorf("bgp observer: list peers: %w", err)
	}
	for _, ps := range o.s.peers {
		t.Peers = append(t.Peers, o.peerStatus(ps, state[ps.address]))
	}
	o.mu.Lock()
	if !o.streamUp && o.streamErr != nil {
		err := o.streamErr
		o.mu.Unlock()
		return nil, fmt.Errorf("bgp observer: the copy of the received routes is incomplete: the speaker's route stream ended (%v) and has not reconnected yet", err)
	}
	n := 0
	for i, ps := range o.s.peers {
		if t.Peers[i].carriesRoutes() {
			n += len(o.peers[ps.address].routes)
		}
	}
	t.Routes = make([]Route, 0, n)
	for i, ps := range o.s.peers {
		if !t.Peers[i].carriesRoutes() {
			continue
		}
		for p := range o.peers[ps.address].routes {
			t.Routes = append(t.Routes, Route{Prefix: p, Peer: ps.name})
		}
	}
	o.mu.Unlock()
	sortRoutes(t.Routes)
	return t, nil
}

// sortRoutes orders routes by address, then length, then peer, so that
// reports are stable.
func sortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := a.Prefix.Bits() - b.Prefix.Bits(); c != 0 {
			return c
		}
		return strings.Compare(a.Peer, b.Peer)
	})
}

func (o *Observer) peerStatus(ps peerSettings, p *api.Peer) PeerStatus {
	o.mu.Lock()
	tr := *o.peers[ps.address]
	eor := maps.Clone(tr.eor)
	o.mu.Unlock()
	st := PeerStatus{
		Name: ps.name, Address: ps.address, ASN: ps.asn, Passive: ps.passive,
		State: tr.state, Since: tr.since, Flaps: tr.flaps,
		LastError: tr.lastError, LastErrorAt: tr.lastErrorAt,
		MaxPrefixes: ps.maxPrefixes, MaxPrefixExceeded: tr.pfxExceeded,
		NotStarted: tr.notStarted,
	}
	if p != nil {
		st.State = strings.TrimPrefix(p.GetState().GetSessionState().String(), "SESSION_STATE_")
		if p.GetState().GetAdminState() == api.PeerState_PFX_CT {
			st.MaxPrefixExceeded = true
		}
		if int(p.GetState().GetFlops()) > st.Flaps {
			st.Flaps = int(p.GetState().GetFlops())
		}
		if st.Established() && st.Since.IsZero() {
			st.Since = p.GetTimers().GetState().GetUptime().AsTime()
		}
	}
	if !st.Established() {
		st.Since = time.Time{}
	}
	for _, f := range ps.families {
		fs := FamilyStatus{Family: f, EndOfRIB: eor[f]}
		for _, a := range p.GetAfiSafis() {
			if familyName(a.GetConfig().GetFamily()) == f {
				fs.Received, fs.Accepted = a.GetState().GetReceived(), a.GetState().GetAccepted()
			}
		}
		st.Families = append(st.Families, fs)
	}
	return st
}
