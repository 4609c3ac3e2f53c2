package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/daemon"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// TestMain: no goroutine outlives the tests but gobgp v3.37.0's Serve
// loop, which cannot end (TestTapBGPLab's observer leaves it parked).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/osrg/gobgp/v3/pkg/server.(*BgpServer).Serve"))
}

// exposition is the registry's text exposition, without the Go and
// process collectors' series and without comments.
func exposition(t *testing.T, m *Metrics) string {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "vnodediag_") {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	for l := range strings.Lines(b.String()) {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, strings.TrimSuffix(l, "\n"))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func wantLines(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains("\n"+got+"\n", "\n"+w+"\n") {
			t.Errorf("no line %q in\n%s", w, got)
		}
	}
}

func noLines(t *testing.T, got string, prefixes ...string) {
	t.Helper()
	for l := range strings.Lines(got) {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				t.Errorf("unexpected %q", strings.TrimSpace(l))
			}
		}
	}
}

func result(check string, s pb.Status, d time.Duration) *pb.Result {
	return &pb.Result{CheckId: check, Status: s, Duration: durationpb.New(d)}
}

func report(start time.Time, wall time.Duration, results []*pb.Result, sources ...*pb.SourceStatus) *pb.Report {
	return &pb.Report{StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(wall)), Results: results, Sources: sources}
}

func source(name string, s pb.SourceStatus_State, d time.Duration) *pb.SourceStatus {
	return &pb.SourceStatus{Name: name, State: s, Duration: durationpb.New(d)}
}

// A check's status is its worst result's; a check a later run did not
// select loses its series (the run is the daemon's whole selection), a
// source it did not gather keeps its state; a source not configured is
// absent; the last success of a source stays when it fails.
func TestObserveReport(t *testing.T) {
	m := New()
	t0 := time.Unix(1_800_000_000, 0)
	m.ObserveReport(report(t0, 2*time.Second, []*pb.Result{
		result("k8s.a", pb.Status_PASS, 10*time.Millisecond),
		result("k8s.a", pb.Status_FAIL, 10*time.Millisecond),
		result("k8s.b", pb.Status_WARN, 3*time.Millisecond),
		result("bgp.session", pb.Status_SKIP, 0),
	}, source("kube", pb.SourceStatus_OK, 1500*time.Millisecond), source("bgp", pb.SourceStatus_NOT_CONFIGURED, 0),
		source("dns", pb.SourceStatus_OK, 250*time.Millisecond)))
	got := exposition(t, m)
	wantLines(t, got,
		`vnodediag_check_status{check="k8s.a",status="fail"} 1`,
		`vnodediag_check_status{check="k8s.a",status="pass"} 0`,
		`vnodediag_check_status{check="k8s.a",status="error"} 0`,
		`vnodediag_check_status{check="k8s.b",status="warn"} 1`,
		`vnodediag_check_status{check="bgp.session",status="skip"} 1`,
		`vnodediag_check_duration_seconds_count{check="k8s.a"} 1`,
		`vnodediag_check_duration_seconds_sum{check="k8s.a"} 0.01`,
		`vnodediag_run_duration_seconds_count 1`,
		`vnodediag_run_duration_seconds_sum 2`,
		`vnodediag_runs_total 1`,
		`vnodediag_last_run_timestamp_seconds 1.800000002e+09`,
		`vnodediag_source_up{source="kube"} 1`,
		`vnodediag_source_duration_seconds{source="kube"} 1.5`,
		`vnodediag_source_last_success_timestamp_seconds{source="kube"} 1.800000002e+09`,
		`vnodediag_source_up{source="dns"} 1`,
	)
	noLines(t, got, `vnodediag_source_up{source="bgp"}`, `vnodediag_check_duration_seconds_count{check="bgp.session"}`)

	// The second run selects k8s.a only; kube fails.
	m.ObserveReport(report(t0.Add(time.Minute), time.Second, []*pb.Result{result("k8s.a", pb.Status_PASS, time.Millisecond)},
		source("kube", pb.SourceStatus_FAILED, 60*time.Second)))
	got = exposition(t, m)
	wantLines(t, got,
		`vnodediag_check_status{check="k8s.a",status="fail"} 0`,
		`vnodediag_check_status{check="k8s.a",status="pass"} 1`,
		`vnodediag_check_duration_seconds_count{check="k8s.a"} 2`,
		`vnodediag_runs_total 2`,
		`vnodediag_source_up{source="kube"} 0`,
		`vnodediag_source_duration_seconds{source="kube"} 60`,
		`vnodediag_source_last_success_timestamp_seconds{source="kube"} 1.800000002e+09`,
		`vnodediag_source_up{source="dns"} 1`,
	)
	noLines(t, got, `vnodediag_check_status{check="k8s.b"`, `vnodediag_check_status{check="bgp.session"`)
	m.ObserveReport(nil)
	wantLines(t, exposition(t, m), `vnodediag_runs_total 2`)
}

// As the daemon's Observer: a periodic run's report sets the checks; from
// the first refresh on the sources follow the refreshes, not the reports
// (which read warm values); reloads are counted by result; a runner's
// providers are tapped once however often TapRunner sees them.
func TestDaemonObserver(t *testing.T) {
	m := New()
	var _ daemon.Observer = m
	r := &diag.Runner{}
	check := diag.Check{ID: "test.one", Run: func(context.Context, *diag.Inputs) []*pb.Result { return []*pb.Result{diag.Pass("fine")} }}
	first := r.Run(context.Background(), []diag.Check{check})
	m.RunDone(first, time.Second)
	m.SourceRefreshed("kube", errors.New("watch failing"), 2*time.Second)
	m.SourceRefreshed("bgp", fmt.Errorf("off: %w", diag.ErrNotConfigured), 0)
	m.RunDone(&pb.Report{Results: first.Results, Sources: []*pb.SourceStatus{{Name: "kube", State: pb.SourceStatus_OK}}}, time.Second)
	m.Reloaded(nil)
	m.Reloaded(errors.New("bad"))
	m.Reloaded(errors.New("worse"))
	out := exposition(t, m)
	wantLines(t, out, `vnodediag_check_status{check="test.one",status="pass"} 1`, `vnodediag_runs_total 2`,
		`vnodediag_source_up{source="kube"} 0`, `vnodediag_source_duration_seconds{source="kube"} 2`,
		`vnodediag_config_reloads_total{result="applied"} 1`, `vnodediag_config_reloads_total{result="rejected"} 2`)
	if strings.Contains(out, `source="bgp"`) {
		t.Errorf("a source not configured has series:\n%s", out)
	}

	dns := dnsprobe.Source.Provide(func(context.Context) (*dnsprobe.Observations, error) { return &dnsprobe.Observations{}, nil })
	r = &diag.Runner{Providers: []diag.Provider{dns}}
	m.TapRunner(r)
	m.TapRunner(r)
	tp, ok := r.Providers[0].(tapped)
	if !ok {
		t.Fatalf("the dns provider is not tapped: %T", r.Providers[0])
	}
	if _, twice := tp.Provider.(tapped); twice {
		t.Error("TapRunner tapped a tapped provider again")
	}
}

// The BGP series come from the latest table: one per peer, received
// prefixes per family, uptime as of when the table was read.
func TestBGPTable(t *testing.T) {
	m := New()
	taken := time.Unix(1_800_000_000, 0)
	m.ObserveValue(&bgp.Table{Taken: taken, Peers: []bgp.PeerStatus{
		{Name: "tor-1", Address: netip.MustParseAddr("192.0.2.1"), ASN: 65001, State: "ESTABLISHED", Since: taken.Add(-90 * time.Second), Flaps: 2,
			Families: []bgp.FamilyStatus{{Family: "ipv4-unicast", Received: 12}, {Family: "ipv6-unicast", Received: 3}}},
		{Name: "tor-2", Address: netip.MustParseAddr("192.0.2.2"), ASN: 65002, State: "ACTIVE", Flaps: 0},
	}})
	wantLines(t, exposition(t, m),
		`vnodediag_bgp_peer_info{asn="65001",name="tor-1",peer="192.0.2.1"} 1`,
		`vnodediag_bgp_session_established{peer="192.0.2.1"} 1`,
		`vnodediag_bgp_session_established{peer="192.0.2.2"} 0`,
		`vnodediag_bgp_session_uptime_seconds{peer="192.0.2.1"} 90`,
		`vnodediag_bgp_session_uptime_seconds{peer="192.0.2.2"} 0`,
		`vnodediag_bgp_session_flaps_total{peer="192.0.2.1"} 2`,
		`vnodediag_bgp_received_prefixes{family="ipv4-unicast",peer="192.0.2.1"} 12`,
		`vnodediag_bgp_received_prefixes{family="ipv6-unicast",peer="192.0.2.1"} 3`,
	)
}

// dnsServer serves DNS on a loopback UDP port with handler until the test
// ends, and returns its address.
func dnsServer(t *testing.T, handler dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return pc.LocalAddr().String()
}

// The DNS series come from a real DNS source's gather through Tap: one
// resolver that answers, one that refuses, one port where nothing listens.
// A resolver a reload removed, or the whole source, loses its series.
func TestTapDNS(t *testing.T) {
	good := dnsServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch q.Qtype {
		case dns.TypeSOA:
			rr, _ := dns.NewRR(q.Name + " 60 IN SOA ns." + q.Name + " admin." + q.Name + " 1 60 60 60 60")
			m.Answer = append(m.Answer, rr)
		case dns.TypeA:
			rr, _ := dns.NewRR(q.Name + " 60 IN A 10.1.2.3")
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	})
	refusing := dnsServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeRefused)
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()

	cfg := &dnsprobe.Config{
		OnPremResolvers: []dnsprobe.Resolver{{Name: "good", Address: good}, {Name: "refusing", Address: refusing}, {Name: "dead", Address: dead}},
		PrivateZones:    []string{"svc.cloud.internal"}, OnPremZones: []string{"corp.example"},
		PrivateZoneNames: []dnsprobe.Name{{Name: "api.svc.cloud.internal"}},
		Timeout:          diag.Duration(2 * time.Second),
	}
	p, err := dnsprobe.NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	tp := m.Tap(p)
	if tp.Name() != "dns" {
		t.Fatalf("tapped name %q", tp.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := tp.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	got := exposition(t, m)
	wantLines(t, got,
		`vnodediag_dns_queries_total{outcome="answered",resolver="`+good+`"} 2`,
		`vnodediag_dns_queries_total{outcome="refused",resolver="`+refusing+`"} 2`,
		`vnodediag_dns_queries_total{outcome="connection_refused",resolver="`+dead+`"} 2`,
		`vnodediag_dns_query_duration_seconds_count{resolver="`+good+`"} 2`,
	)
	if m.Tap(dnsprobe.Source.Unconfigured("off")) == nil {
		t.Error("Tap of an unconfigured source")
	}

	// A reload keeps only the good resolver: the others' series go, its
	// own go on counting.
	p, err = dnsprobe.NewProvider(&dnsprobe.Config{OnPremResolvers: cfg.OnPremResolvers[:1], PrivateZones: cfg.PrivateZones,
		OnPremZones: cfg.OnPremZones, PrivateZoneNames: cfg.PrivateZoneNames, Timeout: cfg.Timeout}, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Tap(p).Gather(ctx); err != nil {
		t.Fatal(err)
	}
	got = exposition(t, m)
	wantLines(t, got, `vnodediag_dns_queries_total{outcome="answered",resolver="`+good+`"} 4`)
	noLines(t, got, `vnodediag_dns_queries_total{outcome="refused"`, `vnodediag_dns_queries_total{outcome="connection_refused"`,
		`vnodediag_dns_query_duration_seconds_count{resolver="`+dead+`"}`, `vnodediag_dns_query_duration_seconds_count{resolver="`+refusing+`"}`)
	// A reload turns the dns section off: no DNS series are left.
	m.SourceRefreshed(dnsprobe.Source.Name(), diag.ErrNotConfigured, 0)
	noLines(t, exposition(t, m), `vnodediag_dns_`)
}

func TestOutcomeLabel(t *testing.T) {
	for k, want := range map[dnsprobe.Kind]string{
		dnsprobe.Answered: "answered", dnsprobe.NXDomain: "nxdomain", dnsprobe.ConnRefused: "connection_refused",
		dnsprobe.TruncatedTCPFailed: "truncated_tcp_failed", dnsprobe.Timeout: "timeout", dnsprobe.OtherRcode: "rcode",
	} {
		if got := OutcomeLabel(k); got != want {
			t.Errorf("%q: %q, want %q", k, got, want)
		}
	}
}

// A source's health follows the daemon's: serving until its last
// failureThreshold refreshes failed, then vnodediag_source_serving 0 and
// vnodediag_source_not_serving_info naming the cause, its URLs redacted
// (no password) and cut to MaxReason bytes; serving again at its next
// good refresh, the info series gone. Driven by a real daemon refreshing
// a source every second.
func TestSourceHealth(t *testing.T) {
	var mu sync.Mutex
	fail := errors.New(`Get "https://diag:s3cr3t-pass@ecs.example.internal/?Action=DescribeInstances": dial tcp 192.0.2.10:443: connect: connection refused` +
		strings.Repeat(" and more", 40))
	key := diag.NewKey[int]("lamp")
	p := key.Provide(func(context.Context) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return 1, fail
	})
	check := diag.Check{ID: "test.lamp", Needs: diag.Needs(key), Run: func(context.Context, *diag.Inputs) []*pb.Result { return []*pb.Result{diag.Pass("lit")} }}
	m := New()
	d, err := daemon.New(daemon.Options{Checks: []diag.Check{check}, Runner: &diag.Runner{Providers: []diag.Provider{p}}, Observer: m,
		Config: daemon.Config{Interval: diag.Duration(time.Hour), FailureThreshold: 2, Refresh: map[string]diag.Duration{"lamp": diag.Duration(time.Second)}}})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer func() { d.Stop(); d.Abort() }()
	out := waitExposition(t, m, `vnodediag_source_serving{source="lamp"} 0`)
	var info string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, `vnodediag_source_not_serving_info{`) {
			info = l
		}
	}
	reason := diag.RedactURLs(fail.Error())
	want := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(reason[:MaxReason-len("...")] + "...")
	if !strings.Contains(info, `reason="`+want+`"`) || !strings.HasSuffix(strings.TrimSpace(info), "} 1") {
		t.Errorf("not-serving info %q, want the reason %q", info, want)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("the password is in the metrics:\n%s", out)
	}
	mu.Lock()
	fail = nil
	mu.Unlock()
	out = waitExposition(t, m, `vnodediag_source_serving{source="lamp"} 1`)
	noLines(t, out, `vnodediag_source_not_serving_info`)
}

// waitExposition waits (15 s at most) until m's exposition has every
// line, and returns it.
func waitExposition(t *testing.T, m *Metrics, lines ...string) string {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := exposition(t, m)
		missing := ""
		for _, l := range lines {
			if !strings.Contains("\n"+out+"\n", "\n"+l+"\n") {
				missing = l
				break
			}
		}
		if missing == "" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %q in\n%s", missing, out)
		}
	}
}

// A reload that turns sources off and deselects a check leaves none of
// their series behind: an alert on them (VnodediagSourceDown,
// VnodediagBGPSessionDown, VnodediagCheckFailing) would otherwise fire
// until the daemon restarts. Driven by a real daemon and its Reload, the
// way SIGHUP applies a new configuration: a section removed from the file
// becomes an unconfigured source.
func TestReloadDropsStaleSeries(t *testing.T) {
	lampKey := diag.NewKey[int]("lamp")
	lamp := lampKey.Provide(func(context.Context) (int, error) { return 0, errors.New("lamp: connection refused") })
	peer := bgp.PeerStatus{Name: "tor-1", Address: netip.MustParseAddr("192.0.2.1"), ASN: 65001, State: "ACTIVE"}
	router := bgp.Source.Provide(func(context.Context) (*bgp.Table, error) { return &bgp.Table{Peers: []bgp.PeerStatus{peer}}, nil })
	checks := []diag.Check{
		{ID: "test.fail", Run: func(context.Context, *diag.Inputs) []*pb.Result { return []*pb.Result{diag.Fail("broken")} }},
		{ID: "test.ok", Run: func(context.Context, *diag.Inputs) []*pb.Result { return []*pb.Result{diag.Pass("fine")} }},
	}
	cfg := daemon.Config{Interval: diag.Duration(time.Hour), FailureThreshold: 2,
		Refresh: map[string]diag.Duration{"lamp": diag.Duration(time.Second), "bgp": diag.Duration(time.Second)}}
	m := New()
	r := &diag.Runner{Providers: []diag.Provider{lamp, router}}
	m.TapRunner(r)
	d, err := daemon.New(daemon.Options{Checks: checks, Runner: r, Observer: m, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer func() { d.Stop(); d.Abort() }()
	waitExposition(t, m, `vnodediag_source_serving{source="lamp"} 0`, `vnodediag_bgp_session_established{peer="192.0.2.1"} 0`,
		`vnodediag_check_status{check="test.fail",status="fail"} 1`)

	cfg.Only = []string{"test.ok"}
	r = &diag.Runner{Providers: []diag.Provider{diag.Unconfigured("lamp", "no lamp section"), diag.Unconfigured(bgp.Source.Name(), "no bgp section")}}
	m.TapRunner(r)
	if err := d.Reload(daemon.Options{Checks: checks, Runner: r, Observer: m, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	out := waitExposition(t, m, `vnodediag_runs_total 2`)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out = exposition(t, m); !strings.Contains(out, `source="lamp"`) && !strings.Contains(out, `vnodediag_bgp_`) {
			break
		}
	}
	noLines(t, out, `vnodediag_source_not_serving_info`, `vnodediag_source_up{source="lamp"}`, `vnodediag_source_serving{source="lamp"}`,
		`vnodediag_bgp_session_established`, `vnodediag_bgp_peer_info`, `vnodediag_check_status{check="test.fail"`)
	wantLines(t, out, `vnodediag_check_status{check="test.ok",status="pass"} 1`)
}

// A reason is cut at a character's start, never inside it, and made
// valid UTF-8.
func TestCutReason(t *testing.T) {
	long := strings.Repeat("é", MaxReason)
	got := cutReason(long)
	if len(got) > MaxReason || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("cutReason: %d bytes, valid %v: %q", len(got), utf8.ValidString(got), got)
	}
	if got := cutReason("bad \xff byte"); got != "bad \uFFFD byte" {
		t.Errorf("cutReason of invalid UTF-8: %q", got)
	}
}
