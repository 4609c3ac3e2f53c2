// Command bgp is the BGP observer benchmark (make bench-bgp): BIRD 2 in a
// network namespace exports N static prefixes; first vnodediag's observer
// (one-shot, in a child process so its peak RSS is its own) and then
// Debian's gobgpd receive the same table from the same BIRD. It prints,
// per speaker, the time from Established to the last prefix received (for
// the observer: table read and checks evaluated too) and the peak RSS.
// Needs root, bird2 and gobgpd.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/test/bgplab"
	"github.com/vnodediag/vnodediag/test/netlab"
)

const (
	observerASN = 65010
	routerASN   = 65001
)

// result is one speaker's run.
type result struct {
	Speaker   string        `json:"speaker"`
	Received  int           `json:"received"`
	ToLast    time.Duration `json:"toLast"` // Established -> last prefix (and checks, for the observer)
	ToReceive time.Duration `json:"toReceive"`
	PeakRSSKB int64         `json:"peakRSSKB"`
	Err       string        `json:"err,omitempty"`
}

func main() {
	prefixes := flag.Int("prefixes", 100_000, "prefixes BIRD exports")
	runs := flag.Int("runs", 3, "runs per speaker (the median is reported)")
	nodes := flag.Int("nodes", 5000, "on-prem nodes whose podCIDRs the observer checks")
	child := flag.String("child", "", "internal: run the observer against this BIRD address")
	flag.Parse()
	if *child != "" {
		runChild(*child, *prefixes, *nodes)
		return
	}
	if why := netlab.Available(); why != "" {
		log.Fatalf("bench-bgp: %s", why)
	}
	h, err := netlab.NewHost("bench")
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	start := time.Now()
	b, err := bgplab.StartBIRD(h, bgplab.Router{ASN: routerASN, Neighbor: h.RootAddr, NeighborASN: observerASN, Passive: true, Bulk: *prefixes})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("BIRD with %d static prefixes ready in %s\n", *prefixes, time.Since(start).Round(time.Millisecond))
	var ours, theirs []result
	for i := 0; i < *runs; i++ {
		ours = append(ours, runObserver(h, *prefixes, *nodes))
		waitBIRDIdle(b)
		theirs = append(theirs, runGobgpd(h, *prefixes))
		waitBIRDIdle(b)
	}
	o, g := median(ours), median(theirs)
	fmt.Printf("\n%-22s %10s %16s %16s %12s\n", "speaker", "received", "est->received", "est->checks", "peak RSS")
	for _, r := range []result{o, g} {
		last := "-"
		if r.Speaker != "gobgpd" {
			last = r.ToLast.Round(time.Millisecond).String()
		}
		fmt.Printf("%-22s %10d %16s %16s %9.1f MB\n", r.Speaker, r.Received, r.ToReceive.Round(time.Millisecond), last, float64(r.PeakRSSKB)/1024)
		if r.Err != "" {
			fmt.Printf("  error: %s\n", r.Err)
		}
	}
	if g.ToReceive > 0 {
		fmt.Printf("\nratio observer (to checks evaluated) / gobgpd (to last prefix): %.2f (target <= 1.10)\n", float64(o.ToLast)/float64(g.ToReceive))
	}
	fmt.Printf("observer peak RSS %.1f MB (target <= 200 MB)\n", float64(o.PeakRSSKB)/1024)
	fmt.Printf("runs: %d per speaker, median shown; all observer runs: %s; all gobgpd runs: %s\n", *runs, times(ours), times(theirs))
}

func times(rs []result) string {
	var s []string
	for _, r := range rs {
		d := r.ToLast
		if r.Speaker == "gobgpd" {
			d = r.ToReceive
		}
		s = append(s, d.Round(time.Millisecond).String())
	}
	return strings.Join(s, " ")
}

func median(rs []result) result {
	sorted := append([]result(nil), rs...)
	key := func(r result) time.Duration {
		if r.Speaker == "gobgpd" {
			return r.ToReceive
		}
		return r.ToLast
	}
	sort.Slice(sorted, func(i, j int) bool { return key(sorted[i]) < key(sorted[j]) })
	m := sorted[len(sorted)/2]
	for _, r := range rs {
		m.PeakRSSKB = max(m.PeakRSSKB, r.PeakRSSKB)
	}
	return m
}

// waitBIRDIdle waits until BIRD has noticed the last session is gone, so
// the next speaker does not race its teardown.
func waitBIRDIdle(b *bgplab.BIRD) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, est, err := b.Counts(); err == nil && !est {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runObserver(h *netlab.Host, prefixes, nodes int) result {
	self, _ := os.Executable()
	cmd := exec.Command(self, "-child", h.HostAddr.String(), "-prefixes", strconv.Itoa(prefixes), "-nodes", strconv.Itoa(nodes))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	r := result{Speaker: "vnodediag observer"}
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if err := json.Unmarshal(out, &r); err != nil {
		r.Err = fmt.Sprintf("child output %q: %v", out, err)
	}
	return r
}

// runChild is the observer's side, in its own process.
func runChild(addr string, prefixes, nodes int) {
	cfg := &bgp.Config{LocalASN: observerASN, RouterID: "192.0.2.10", ListenPort: -1, EstablishTimeout: diag.Duration(60 * time.Second),
		Peers: []bgp.PeerConfig{{Name: "bird", Address: addr, ASN: routerASN, HoldTime: ptr(uint32(3))}}}
	o, err := bgp.NewObserver(cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if err := o.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}
	received := time.Now()
	tb, err := o.Table(ctx)
	if err != nil {
		log.Fatal(err)
	}
	listed := time.Now()
	// The checks a run evaluates on this table.
	in := diag.NewInputs(bgp.Source.With(tb), kube.Source.With(&kube.Snapshot{Nodes: benchNodes(nodes)}))
	for _, c := range bgp.Checks() {
		c.Run(ctx, in)
	}
	done := time.Now()
	since := tb.Peers[0].Since
	fmt.Fprintf(os.Stderr, "observer: established->end-of-rib %s, table read %s, checks %s\n",
		received.Sub(since).Round(time.Millisecond), listed.Sub(received).Round(time.Millisecond), done.Sub(listed).Round(time.Millisecond))
	o.Stop()
	r := result{Speaker: "vnodediag observer", Received: len(tb.Routes), ToReceive: received.Sub(since), ToLast: done.Sub(since), PeakRSSKB: vmHWM(os.Getpid())}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func benchNodes(n int) []*corev1.Node {
	out := make([]*corev1.Node, n)
	for i := range out {
		p := bgplab.BulkPrefix(i * 4).Masked() // inside the exported table
		p = netip.PrefixFrom(p.Addr(), 28)
		out[i] = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("op-%d", i)}, Spec: corev1.NodeSpec{PodCIDR: p.String(), PodCIDRs: []string{p.String()}}}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func runGobgpd(h *netlab.Host, prefixes int) result {
	r := result{Speaker: "gobgpd"}
	conf := filepath.Join(h.Dir, "gobgpd.toml")
	apiPort := 50051 + int(h.RootAddr.As4()[3])
	toml := fmt.Sprintf(`[global.config]
  as = %d
  router-id = "192.0.2.11"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "%s"
    peer-as = %d
  [neighbors.timers.config]
    connect-retry = 2
    hold-time = 3
    keepalive-interval = 1
`, observerASN, h.HostAddr, routerASN)
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		r.Err = err.Error()
		return r
	}
	cmd := exec.Command("gobgpd", "-f", conf, "--api-hosts", fmt.Sprintf("127.0.0.1:%d", apiPort), "--pprof-disable", "-l", "warn")
	logf, _ := os.Create(filepath.Join(h.Dir, "gobgpd.log"))
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		r.Err = err.Error()
		return r
	}
	defer func() { netlab.Kill(cmd.Process.Pid); _ = cmd.Wait() }()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", apiPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer conn.Close()
	c := api.NewGobgpApiClient(conn)
	var established time.Time
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		n, est := gobgpdCounts(c)
		now := time.Now()
		if est && established.IsZero() {
			established = now
		}
		if n >= prefixes {
			r.Received, r.ToReceive = n, now.Sub(established)
			r.PeakRSSKB = vmHWM(cmd.Process.Pid)
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Err = "gobgpd did not receive every prefix within 120s"
	return r
}

func gobgpdCounts(c api.GobgpApiClient) (received int, established bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.ListPeer(ctx, &api.ListPeerRequest{})
	if err != nil {
		return 0, false
	}
	for {
		p, err := st.Recv()
		if err != nil {
			return received, established
		}
		if p.Peer.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
			established = true
		}
		for _, a := range p.Peer.GetAfiSafis() {
			received += int(a.GetState().GetReceived())
		}
	}
}

// vmHWM is a process's peak resident set size in KiB.
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
