// Command soak is `make soak`: a bounded soak of `vnodediag serve` against
// a real envtest kube-apiserver. Pods are created, relabelled and deleted
// without pause while clients call the daemon without pause (the latest
// report, warm and fresh Diagnose, DiagnoseStream, watch streams opened and
// cancelled, history); every -sample it prints the daemon's RSS (from
// /proc) and goroutines (from its periodic-run log line), then the first
// and last samples after warm-up side by side. It fails when a call fails
// in a way the daemon does not promise (RESOURCE_EXHAUSTED is a promise),
// and when RSS or goroutines grew past -max-rss-growth or
// -max-goroutine-growth from the end of warm-up (the first third) to the
// end: a leak grows with the calls, a steady daemon stays flat.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/callers"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

func main() {
	bin := flag.String("bin", "bin/vnodediag", "vnodediag binary")
	duration := flag.Duration("duration", 3*time.Minute, "how long to soak")
	sample := flag.Duration("sample", 15*time.Second, "sampling period")
	clients := flag.Int("clients", 4, "client goroutines calling without pause")
	pods := flag.Int("pods", 300, "pods the churn keeps alive at most")
	daemonLog := flag.String("daemon-log", "", "write the daemon's log (JSON lines) to this file")
	flag.Float64Var(&maxRSSGrowth, "max-rss-growth", maxRSSGrowth, "fail when the end's RSS is more than this times warm-up's")
	flag.Float64Var(&maxGoroutineGrowth, "max-goroutine-growth", maxGoroutineGrowth, "fail when the end's goroutines are more than this times warm-up's (plus 10)")
	flag.Parse()
	if err := run(*bin, *duration, *sample, *clients, *pods, *daemonLog); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// The growth from the end of warm-up to the end that fails the soak. RSS
// moves by a few percent between samples as the collector runs, and
// goroutines with the calls in flight; a leak of one goroutine or a few
// KiB per call, over thousands of calls, passes both.
var (
	maxRSSGrowth       = 1.25
	maxGoroutineGrowth = 1.5
)

type stats struct {
	ok, busy, failed, churn atomic.Int64
	start                   time.Time
	mu                      sync.Mutex
	byMethod                [len(methods)]failures
}

// failures are one method's failed calls: how many, the first and when.
type failures struct {
	n           int
	first, last time.Duration
	firstErr    error
}

func (s *stats) note(method int, err error) {
	switch {
	case err == nil:
		s.ok.Add(1)
	case status.Code(err) == codes.ResourceExhausted:
		s.busy.Add(1)
	case status.Code(err) == codes.Canceled:
		s.ok.Add(1)
	default:
		s.failed.Add(1)
		at := time.Since(s.start).Round(time.Millisecond)
		s.mu.Lock()
		f := &s.byMethod[method]
		if f.n == 0 {
			f.first, f.firstErr = at, err
		}
		f.n++
		f.last = at
		s.mu.Unlock()
	}
}

// failureReport names each method's failures, or "" when none failed.
func (s *stats) failureReport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for i, f := range s.byMethod {
		if f.n > 0 {
			fmt.Fprintf(&b, "\n  %s: %d failed between t=%s and t=%s; the first: %v", methods[i], f.n, f.first, f.last, f.firstErr)
		}
	}
	return b.String()
}

func run(bin string, duration, sample time.Duration, clients, maxPods int, daemonLog string) error {
	fmt.Fprintln(os.Stderr, "soak: starting kube-apiserver and etcd ...")
	lab, err := kubelab.Start()
	if err != nil {
		return err
	}
	defer lab.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vnodediag-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "config.yaml")
	doc := fmt.Sprintf("kubernetes:\n  kubeconfig: %s\ndaemon:\n  interval: 5s\n  refresh:\n    kube: 2s\n", lab.Kubeconfig)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := lis.Addr().String()
	lis.Close()
	daemon := exec.Command(bin, "serve", "--config", cfg, "--listen", addr, "--log-level", "info", "--log-format", "json", "--shutdown-grace", "10s")
	logs, err := daemon.StderrPipe()
	if err != nil {
		return err
	}
	if err := daemon.Start(); err != nil {
		return err
	}
	defer func() { _ = daemon.Process.Kill(); _ = daemon.Wait() }()
	var goroutines atomic.Int64
	ready := make(chan struct{})
	var copyTo io.Writer = io.Discard
	if daemonLog != "" {
		f, err := os.Create(daemonLog)
		if err != nil {
			return err
		}
		defer f.Close()
		copyTo = f
	}
	go readLog(io.TeeReader(logs, copyTo), &goroutines, ready)
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the daemon did not start")
	}

	conn, err := callers.Dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pb.NewDiagnosticsServiceClient(conn)
	st := &stats{start: time.Now()}
	soakCtx, stop := context.WithTimeout(ctx, duration)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); churn(soakCtx, lab, maxPods, st) }()
	for i := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); callLoop(soakCtx, client, i, st) }()
	}

	type point struct {
		at         time.Duration
		rssKB      int64
		goroutines int64
	}
	var points []point
	start := st.start
	tick := time.NewTicker(sample)
	fmt.Printf("%8s  %9s  %10s  %8s  %6s  %6s  %7s\n", "t", "RSS MiB", "goroutines", "calls ok", "busy", "failed", "churn")
	for done := false; !done; {
		select {
		case <-soakCtx.Done():
			done = true
		case <-tick.C:
		}
		p := point{at: time.Since(start).Round(time.Second), rssKB: rss(daemon.Process.Pid), goroutines: goroutines.Load()}
		points = append(points, p)
		fmt.Printf("%8s  %9.1f  %10d  %8d  %6d  %6d  %7d\n", p.at, float64(p.rssKB)/1024, p.goroutines, st.ok.Load(), st.busy.Load(), st.failed.Load(), st.churn.Load())
	}
	tick.Stop()
	wg.Wait()
	// The first third is warm-up.
	base := points[len(points)/3]
	last := points[len(points)-1]
	fmt.Printf("\nafter warm-up (t=%s) vs end (t=%s):\n", base.at, last.at)
	fmt.Printf("%-12s %10s %10s %7s\n", "", "warm", "end", "ratio")
	fmt.Printf("%-12s %10.1f %10.1f %6.2fx\n", "RSS MiB", float64(base.rssKB)/1024, float64(last.rssKB)/1024, float64(last.rssKB)/float64(base.rssKB))
	fmt.Printf("%-12s %10d %10d %6.2fx\n", "goroutines", base.goroutines, last.goroutines, float64(last.goroutines)/float64(max(base.goroutines, 1)))

	_ = daemon.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("daemon exit after SIGTERM: %w", err)
		}
	case <-time.After(20 * time.Second):
		return fmt.Errorf("the daemon did not stop within 20s of SIGTERM")
	}
	if n := st.failed.Load(); n > 0 {
		return fmt.Errorf("%d calls failed:%s", n, st.failureReport())
	}
	return grew(base.rssKB, last.rssKB, base.goroutines, last.goroutines)
}

// grew is an error when RSS or goroutines grew from warm-up to the end
// past what a steady daemon shows.
func grew(rss0, rss1, g0, g1 int64) error {
	var errs []error
	if float64(rss1) > float64(rss0)*maxRSSGrowth {
		errs = append(errs, fmt.Errorf("RSS grew from %.1f to %.1f MiB (more than %.2fx)", float64(rss0)/1024, float64(rss1)/1024, maxRSSGrowth))
	}
	if float64(g1) > float64(g0)*maxGoroutineGrowth+10 {
		errs = append(errs, fmt.Errorf("goroutines grew from %d to %d (more than %.2fx + 10)", g0, g1, maxGoroutineGrowth))
	}
	return errors.Join(errs...)
}

// readLog passes the daemon's log by, noting goroutines from each periodic
// run's line; ready is closed when it serves.
func readLog(r io.Reader, goroutines *atomic.Int64, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	once := sync.Once{}
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "serving gRPC") || strings.Contains(line, `"msg":"serving"`) {
			once.Do(func() { close(ready) })
		}
		var rec struct {
			Msg        string `json:"msg"`
			Goroutines int64  `json:"goroutines"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "periodic run" {
			goroutines.Store(rec.Goroutines)
		}
	}
}

// rss is the process's resident set in KiB.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// churn creates, relabels and deletes pods of one namespace until ctx ends,
// keeping at most maxPods.
func churn(ctx context.Context, lab *kubelab.Lab, maxPods int, st *stats) {
	const ns = "soak"
	pods := lab.Client.CoreV1().Pods(ns)
	var alive []string
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("churn-%d", i)
		p := kubelab.Pod(ns, name, "dc-1", fmt.Sprintf("172.20.1.%d", i%250+2))
		if err := lab.Apply(ctx, p); err == nil {
			alive = append(alive, name)
			st.churn.Add(1)
		}
		if len(alive) > 0 && i%3 == 0 {
			if got, err := pods.Get(ctx, alive[len(alive)/2], metav1.GetOptions{}); err == nil {
				if got.Labels == nil {
					got.Labels = map[string]string{}
				}
				got.Labels["soak"] = strconv.Itoa(i)
				if _, err := pods.Update(ctx, got, metav1.UpdateOptions{}); err == nil {
					st.churn.Add(1)
				}
			}
		}
		if len(alive) >= maxPods {
			if err := pods.Delete(ctx, alive[0], metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err == nil {
				st.churn.Add(1)
			}
			alive = alive[1:]
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// methods names the calls of callLoop's mix, in its order.
var methods = [...]string{"GetLatestReport", "Diagnose", "Diagnose (fresh)", "DiagnoseStream", "WatchReports", "ListHistory"}

// callLoop calls the daemon without pause until ctx ends, each client its
// own mix.
func callLoop(ctx context.Context, c pb.DiagnosticsServiceClient, i int, st *stats) {
	// The soak is over at its deadline, not when ctx's timer has fired:
	// gRPC refuses a call whose deadline has passed before that, at once,
	// as DEADLINE_EXCEEDED.
	end, _ := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(end) }
	for n := 0; !over(); n++ {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var err error
		switch (n + i) % len(methods) {
		case 0:
			_, err = c.GetLatestReport(cctx, &pb.GetLatestReportRequest{})
			if status.Code(err) == codes.Unavailable {
				err = nil // before the first run
			}
		case 1:
			_, err = c.Diagnose(cctx, &pb.DiagnoseRequest{Only: []string{"k8s"}})
		case 2:
			_, err = c.Diagnose(cctx, &pb.DiagnoseRequest{Only: []string{"k8s.providerid-format"}, Fresh: true})
		case 3:
			var s grpc.ServerStreamingClient[pb.DiagnoseEvent]
			if s, err = c.DiagnoseStream(cctx, &pb.DiagnoseRequest{Only: []string{"k8s"}}); err == nil {
				for err == nil {
					_, err = s.Recv()
				}
				if err == io.EOF {
					err = nil
				}
			}
		case 4:
			wctx, wcancel := context.WithTimeout(cctx, 500*time.Millisecond)
			var s grpc.ServerStreamingClient[pb.WatchEvent]
			if s, err = c.WatchReports(wctx, &pb.WatchReportsRequest{Current: true}); err == nil {
				for err == nil {
					_, err = s.Recv()
				}
				if status.Code(err) == codes.DeadlineExceeded {
					err = nil
				}
			}
			wcancel()
		case 5:
			_, err = c.ListHistory(cctx, &pb.ListHistoryRequest{Limit: 5})
		}
		cancel()
		if over() {
			return
		}
		st.note((n+i)%len(methods), err)
	}
}
