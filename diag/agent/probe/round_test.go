package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// dnsServer runs a miekg/dns server on a loopback UDP port that answers A
// records from answers, REFUSED for names it does not know and the SOA of
// every zone.
func dnsServer(t testing.TB, answers map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		q := r.Question[0]
		switch {
		case q.Qtype == dns.TypeSOA:
			m.SetReply(r)
			rr, _ := dns.NewRR(q.Name + " 60 IN SOA ns." + q.Name + " h." + q.Name + " 1 60 60 60 60")
			m.Answer = append(m.Answer, rr)
		case answers[q.Name] != "":
			m.SetReply(r)
			rr, _ := dns.NewRR(q.Name + " 60 IN A " + answers[q.Name])
			m.Answer = append(m.Answer, rr)
		default:
			m.SetRcode(r, dns.RcodeRefused)
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// tcpTarget accepts connections and counts the bytes clients send.
func tcpTarget(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var got atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _ := io.Copy(io.Discard, c)
				got.Add(n)
			}()
		}
	}()
	return l.Addr().String(), &got
}

func metadataServer(t testing.TB) string {
	t.Helper()
	items := map[string]string{
		"instance-id": "eci-uf6fonnghi50eb8wc3uw", "hostname": "shop-api-7d9f", "region-id": "cn-shanghai",
		"zone-id": "cn-shanghai-l", "vpc-id": "vpc-uf6mpzxrd3pkbsc1blpxb", "vswitch-id": "vsw-uf6v5zv2hrfbgyh34qjz8",
		"private-ipv4": "192.168.10.17",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := items[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, v)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/latest/meta-data"
}

func TestRoundProbesEverything(t *testing.T) {
	vpc := dnsServer(t, map[string]string{"api.svc.cloud.internal.": "192.168.2.20"})
	onprem := dnsServer(t, map[string]string{"db.corp.example.": "10.1.2.3"})
	open, received := tcpTarget(t)
	closed := diagtest.ClosedPort(t)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("search default.svc.cluster.local svc.cluster.local\nnameserver 127.0.0.53\noptions ndots:5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Config{
		DNS: DNSConfig{
			ResolvConf: resolv, VPCResolvers: []string{vpc}, OnPremResolvers: []string{onprem},
			OnPremZones: []string{"corp.example"}, PrivateZones: []string{"svc.cloud.internal"},
			Names: []dnsprobe.Name{{Name: "db.corp.example"}, {Name: "api.svc.cloud.internal"}},
		},
		Targets:  []Target{{Name: "open", Address: open}, {Name: "closed", Address: closed}},
		Metadata: MetadataConfig{URL: metadataServer(t)},
	}
	plan, err := c.Plan()
	if err != nil {
		t.Fatal(err)
	}
	// The resolv.conf nameserver is not this test's to query: leave the
	// resolv.conf path out of the queries, keep it in the facts.
	p := NewProber()
	p.network = func(path string) *pb.NetworkFacts {
		f := readNetwork(path)
		if strings.Join(f.ResolvNameservers, ",") != "127.0.0.53:53" || strings.Join(f.ResolvSearch, ",") != "default.svc.cluster.local,svc.cluster.local" {
			t.Errorf("resolv.conf read as %v search %v", f.ResolvNameservers, f.ResolvSearch)
		}
		f.ResolvNameservers = nil
		return f
	}
	r := p.Round(context.Background(), plan)

	got := map[string]string{}
	for _, d := range r.Dns {
		got[d.Path.String()+" "+d.Server+" "+d.Name+" "+d.Type] = d.Outcome
	}
	for k, want := range map[string]string{
		"VPC_DNS " + vpc + " api.svc.cloud.internal. A":       "answered",
		"VPC_DNS " + vpc + " db.corp.example. A":              "REFUSED",
		"VPC_DNS " + vpc + " corp.example. SOA":               "answered",
		"ONPREM_DNS " + onprem + " db.corp.example. A":        "answered",
		"ONPREM_DNS " + onprem + " api.svc.cloud.internal. A": "REFUSED",
	} {
		if got[k] != want {
			t.Errorf("%s: %q, want %q", k, got[k], want)
		}
	}
	if len(r.Dns) != 8 {
		t.Errorf("%d queries, want 2 servers x (2 names + 2 zone SOAs) = 8", len(r.Dns))
	}
	if r.Connects[0].Outcome != pb.ConnectResult_CONNECTED || r.Connects[0].LocalAddress == "" {
		t.Errorf("open target: %v", r.Connects[0])
	}
	if r.Connects[1].Outcome != pb.ConnectResult_REFUSED {
		t.Errorf("closed target: %v", r.Connects[1])
	}
	md := r.Metadata
	if !md.Available || md.InstanceId != "eci-uf6fonnghi50eb8wc3uw" || md.VswitchId != "vsw-uf6v5zv2hrfbgyh34qjz8" || md.ZoneId != "cn-shanghai-l" || len(md.Errors) != 0 {
		t.Errorf("metadata %v", md)
	}
	if len(r.Network.Interfaces) == 0 || len(r.Network.Routes) == 0 {
		t.Errorf("network facts: %d interfaces, %d routes; errors %v", len(r.Network.Interfaces), len(r.Network.Routes), r.Network.Errors)
	}
	lo := false
	for _, i := range r.Network.Interfaces {
		lo = lo || i.Name == "lo" && i.Mtu > 0 && len(i.Addresses) > 0
	}
	if !lo {
		t.Errorf("no lo with MTU and addresses in %v", r.Network.Interfaces)
	}
	// Safety: a connect probe opens and closes; it never sends a byte.
	time.Sleep(50 * time.Millisecond)
	if n := received.Load(); n != 0 {
		t.Errorf("the target received %d bytes; a connect probe must send nothing", n)
	}
}

// TestMissingMetadataIsAFinding: no MetaServer answers (as outside ECI); the
// round completes within the metadata deadline and says so.
func TestMissingMetadataIsAFinding(t *testing.T) {
	plan := &pb.ProbePlan{MetadataUrl: "http://" + diagtest.ClosedPort(t) + "/latest/meta-data"}
	c := &Config{Metadata: MetadataConfig{URL: plan.MetadataUrl, Timeout: diag.Duration(300 * time.Millisecond)}}
	plan, _ = c.Plan()
	plan.VpcResolvers = nil
	start := time.Now()
	r := NewProber().Round(context.Background(), plan)
	if r.Metadata.Available || len(r.Metadata.Errors) != len(metadataItems) {
		t.Fatalf("metadata %v", r.Metadata)
	}
	if !strings.Contains(r.Metadata.Errors[0], "connection refused") {
		t.Errorf("error %q", r.Metadata.Errors[0])
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("round took %s", d)
	}
}

// TestMetadataRefusesRedirects: the agent reads the MetaServer only; a
// redirect elsewhere is an error, not followed.
func TestMetadataRefusesRedirects(t *testing.T) {
	var followed atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Store(true) }))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/x", http.StatusFound))
	defer srv.Close()
	md := newMetadataReader().read(context.Background(), srv.URL, time.Second)
	if followed.Load() {
		t.Fatal("the metadata reader followed a redirect")
	}
	if !md.Available || len(md.Errors) == 0 || !strings.Contains(md.Errors[0], "redirect refused") {
		t.Errorf("metadata %v", md)
	}
}

func TestClassifyConnect(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	for _, tc := range []struct {
		err  error
		want pb.ConnectResult_Outcome
	}{
		{op(syscall.ECONNREFUSED), pb.ConnectResult_REFUSED},
		{op(syscall.ENETUNREACH), pb.ConnectResult_UNREACHABLE},
		{op(syscall.EHOSTUNREACH), pb.ConnectResult_UNREACHABLE},
		{context.DeadlineExceeded, pb.ConnectResult_TIMED_OUT},
		{&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, pb.ConnectResult_TIMED_OUT},
		{op(syscall.EACCES), pb.ConnectResult_ERROR},
		{errors.New("odd"), pb.ConnectResult_ERROR},
	} {
		if got := classifyConnect(tc.err); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestDNSQueriesPlan(t *testing.T) {
	plan := &pb.ProbePlan{
		VpcResolvers: []string{"100.100.2.136:53"}, OnpremResolvers: []string{"10.0.0.53:53"},
		OnpremZones: []string{"corp.example."},
		Names:       []*pb.ProbeName{{Name: "db.corp.example.", Type: "A"}, {Name: "db.corp.example.", Type: "A"}, {Name: "x.corp.example.", Type: "SRV"}},
	}
	qs := dnsQueries(plan, []string{"10.96.0.10:53", "100.100.2.136:53"})
	var got []string
	for _, q := range qs {
		got = append(got, fmt.Sprintf("%s %s %s %s", q.path, q.server, q.name, dns.TypeToString[q.qtype]))
	}
	want := []string{
		"RESOLV_CONF 10.96.0.10:53 corp.example. SOA",
		"RESOLV_CONF 10.96.0.10:53 db.corp.example. A",
		"RESOLV_CONF 10.96.0.10:53 x.corp.example. SRV",
		"RESOLV_CONF 100.100.2.136:53 corp.example. SOA",
		"RESOLV_CONF 100.100.2.136:53 db.corp.example. A",
		"RESOLV_CONF 100.100.2.136:53 x.corp.example. SRV",
		"ONPREM_DNS 10.0.0.53:53 corp.example. SOA",
		"ONPREM_DNS 10.0.0.53:53 db.corp.example. A",
		"ONPREM_DNS 10.0.0.53:53 x.corp.example. SRV",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("queries:\n%s\nwant (a VPC resolver in resolv.conf is asked once, as the resolv.conf path):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
