// Command bench is `make bench` / `make bench-large`: it loads a large
// hybrid cluster into a real envtest kube-apiserver and measures, in one
// run, on the same server:
//   - the bare lister, the baseline: the same objects paged with limit=500
//     in protobuf, each page discarded once decoded (the least any client
//     must pay);
//   - `vnodediag diagnose` for the Kubernetes checks;
//   - `kubectl get <resources> -A -o json > /dev/null`, for comparison;
//   - `vnodediag serve`: its RSS with the watch cache warm, the latency of
//     Diagnose of the same checks answered from the cache, and that of
//     GetLatestReport from 100 clients beside two floors (the daemon's
//     health Check; a bare echo server sending the same reply).
//
// One-shot figures are wall time (median of -runs) and peak RSS (max of
// -runs); ratios are against the bare lister, beside the targets. When the
// API server runs on this machine with a large heap, each run and each
// round of GetLatestReport calls is started between its garbage
// collections (apiGC).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/test/kubelab"
)

var (
	hold  bool
	reuse string
)

// killedBy records commands that were killed by a signal in some run.
var killedBy = map[string]string{}

func main() {
	if len(os.Args) == 2 && os.Args[1] == echoFlag {
		if err := echoServe(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: echo:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) == 4 && os.Args[1] == bareFlag {
		if err := bareList(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if code, ok := os.LookupEnv(measureEnv); ok {
		measureChild(code, os.Args[1:])
	}
	bin := flag.String("bin", "bin/vnodediag", "vnodediag binary")
	kubectl := flag.String("kubectl", "", "kubectl binary (default: the one hack/envtest-assets.sh built beside kube-apiserver, same release; none leaves kubectl out, e.g. at sizes where it is OOM-killed)")
	nodes := flag.Int("nodes", 1000, "nodes to load")
	pods := flag.Int("pods", 30000, "pods to load")
	daemonsets := flag.Int("daemonsets", 0, "DaemonSets to load (0: compare nodes and pods only)")
	runs := flag.Int("runs", 3, "runs of each command")
	only := flag.String("only", "", "checks to run (default: k8s, or k8s,vnode with -daemonsets)")
	workers := flag.Int("workers", 24, "concurrent API requests while loading")
	calls := flag.Int("daemon-calls", 200, "Diagnose calls to the daemon (0: do not measure the daemon)")
	latest := flag.Bool("latest", true, "with -daemon-calls, also measure GetLatestReport from 100 concurrent clients")
	flag.StringVar(&reuse, "reuse-kubeconfig", "", "measure against this already loaded API server (a -hold run's kubeconfig; -nodes, -pods, -daemonsets must match it) instead of starting and loading one")
	flag.BoolVar(&hold, "hold", false, "after measuring, keep the API server up (prints the config path) until SIGINT/SIGTERM")
	clientGOGC := flag.Int("clients-gogc", 0, "the garbage collector's target of this process, where the GetLatestReport clients decode (0: Go's default); the commands measured keep their own")
	flag.Parse()
	if *clientGOGC > 0 {
		debug.SetGCPercent(*clientGOGC)
	}
	if err := run(*bin, *kubectl, *nodes, *pods, *daemonsets, *runs, *only, *workers, *calls, *latest); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin, kubectl string, nodes, pods, daemonsets, runs int, only string, workers, calls int, latest bool) error {
	resources := "nodes,pods"
	if only == "" {
		only = "k8s"
	}
	if daemonsets > 0 {
		resources = "nodes,pods,daemonsets,deployments"
		if only == "k8s" {
			only = "k8s,vnode"
		}
	}
	if kubectl == "" {
		assets, err := kubelab.AssetsDir()
		if err != nil {
			return err
		}
		kubectl = filepath.Join(assets, "kubectl")
	}
	lab := &kubelab.Lab{Kubeconfig: reuse}
	ctx := context.Background()
	var loadTime time.Duration
	if reuse == "" {
		fmt.Fprintln(os.Stderr, "bench: starting kube-apiserver and etcd ...")
		var err error
		if lab, err = kubelab.Start(); err != nil {
			return err
		}
		defer lab.Stop()
		start := time.Now()
		if err := load(ctx, lab, objects(nodes, pods, daemonsets), workers); err != nil {
			return err
		}
		runtime.GC() // the loaded objects are garbage now; give their memory to the commands measured
		debug.FreeOSMemory()
		loadTime = time.Since(start)
	} else {
		deploymentsWanted = max(1, pods/50) // for the counts printed
	}

	dir, err := os.MkdirTemp("", "vnodediag-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "vnodediag.yaml")
	// The daemon's periodic runs (GetLatestReport's report) run the checks
	// measured.
	b, _ := yaml.Marshal(map[string]any{"kubernetes": map[string]any{"kubeconfig": lab.Kubeconfig, "requestTimeout": "5m"},
		"runner": map[string]any{"sourceTimeout": "10m", "checkTimeout": "5m"},
		"daemon": map[string]any{"only": strings.Split(only, ",")}})
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	bareArgs := []string{bareFlag, lab.Kubeconfig, resources}
	kubectlArgs := []string{"--kubeconfig", lab.Kubeconfig, "get", resources, "-A", "-o", "json"}
	diagArgs := []string{"diagnose", "--config", cfgPath, "--only", only, "-o", "json", "--timeout", "20m"}
	var bWall, kWall, dWall []time.Duration
	var bRSS, kRSS, dRSS int64
	gc := findAPIServer(lab.Kubeconfig)
	type command struct {
		name, bin string
		args      []string
		okCode    int
		walls     *[]time.Duration
		rss       *int64
	}
	bare := command{"bare lister", self, bareArgs, 0, &bWall, &bRSS}
	// diagnose exits 1: the loaded cluster carries a few deliberate faults.
	diagnose := command{"diagnose", bin, diagArgs, 1, &dWall, &dRSS}
	for i := 0; i < runs; i++ {
		// The bare lister and diagnose take turns at going first, each
		// started when it ends before the API server's next collection.
		order := []command{bare, diagnose}
		if i%2 == 1 {
			order = []command{diagnose, bare}
		}
		if kubectl != "none" {
			order = append(order, command{"kubectl", kubectl, kubectlArgs, 0, &kWall, &kRSS})
		}
		for _, c := range order {
			need := 30 * time.Second
			if n := len(*c.walls); n > 0 {
				need = (*c.walls)[n-1] + 5*time.Second
			}
			gc.wait(need)
			w, rss, err := measure(c.bin, c.args, c.okCode)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			*c.walls, *c.rss = append(*c.walls, w), max(*c.rss, rss)
			fmt.Fprintf(os.Stderr, "bench: run %d: %s %s, %d MB\n", i+1, c.name, w.Round(time.Millisecond), rss/1024)
		}
	}
	if sig, ok := killedBy[bin]; ok {
		return fmt.Errorf("vnodediag was killed by %s", sig)
	}
	if sig, ok := killedBy[self]; ok {
		return fmt.Errorf("the bare lister was killed by %s", sig)
	}
	var daemon *daemonFigures
	if calls > 0 {
		fmt.Fprintln(os.Stderr, "bench: measuring vnodediag serve ...")
		if daemon, err = measureDaemon(bin, cfgPath, strings.Split(only, ","), calls, latest, gc); err != nil {
			return fmt.Errorf("vnodediag serve: %w", err)
		}
	}

	bm, km, dm := median(bWall), median(kWall), median(dWall)
	fmt.Printf("\ncluster: %d nodes, %d pods, %d daemonsets, %d deployments (loaded in %s); %d runs each\n",
		nodes, pods, daemonsets, deployments(daemonsets), loadTime.Round(time.Second), runs)
	if gc != nil {
		fmt.Printf("runs and rounds of calls timed between the API server's garbage collections (it shares this machine's cores): %d waited for\n", gc.waits())
	}
	fmt.Println()
	const row = "%-62s %12s %12s   %s\n"
	mb := func(kb int64) string { return fmt.Sprintf("%d MB", kb/1024) }
	fmt.Printf(row, "command", "wall (med)", "peak RSS", "")
	fmt.Printf(row, "bare paged protobuf list (limit 500, items discarded)", bm.Round(time.Millisecond).String(), mb(bRSS), "baseline")
	// The RSS target: the bare lister's plus 0.5 KB per pod.
	rssBar := bRSS + int64(pods)/2
	fmt.Printf(row, "vnodediag diagnose --only "+only, dm.Round(time.Millisecond).String(), mb(dRSS),
		fmt.Sprintf("%.2fx wall (target <= 1.05x), %+.2f KB/pod over the baseline (target <= 0.50, RSS <= %s)",
			float64(dm)/float64(bm), float64(dRSS-bRSS)*1.024/float64(pods), mb(rssBar)))
	kcmp := ""
	if sig, ok := killedBy[kubectl]; ok {
		// kubectl's figures are lower bounds, so the ratios are upper bounds.
		kcmp = "<="
		fmt.Printf("(kubectl did not finish: signal %q, the OOM killer on a machine this size; its wall time and RSS are lower bounds)\n", sig)
	}
	if kubectl != "none" {
		fmt.Printf(row, "kubectl get "+resources+" -A -o json > /dev/null", km.Round(time.Millisecond).String(), mb(kRSS),
			fmt.Sprintf("diagnose/kubectl %s%.2fx wall, %s%.2fx RSS", kcmp, float64(dm)/float64(km), kcmp, float64(dRSS)/float64(kRSS)))
	}
	if daemon != nil {
		fmt.Printf("\n%-62s %12s %12s   %s\n", "daemon: vnodediag serve, watch cache warm", "", "RSS", "")
		fmt.Printf(row, fmt.Sprintf("  synced and answering after %s", daemon.warm.Round(time.Second)), "", mb(daemon.rss),
			fmt.Sprintf("steady state (target <= 150 MB): %s its own, %s the binary's pages; peak %s while syncing",
				mb(daemon.anon), mb(daemon.file), mb(daemon.peakRSS)))
		fmt.Printf(row, fmt.Sprintf("  Diagnose --only %s from the cache, %d calls", only, daemon.calls),
			"p50 "+daemon.p50.Round(100*time.Microsecond).String(), "", "p99 "+daemon.p99.Round(100*time.Microsecond).String()+" (target <= 50ms)")
		if l := daemon.latest; l != nil {
			ms := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
			fmt.Printf("  GetLatestReport from %d clients at once, each on its own connection: the periodic report of %d results and %d states, %d bytes (%d gzipped)\n",
				latestClients, l.results, l.states, l.bytes, l.gzBytes)
			fmt.Printf("  floors: the daemon's health Check; a bare gRPC echo server in a process of its own sending the same reply, decoded and kept as bytes\n")
			fmt.Printf("  %-20s %-20s %-22s %-40s %-22s %-42s %-46s %s\n", "p50 / p99", "health Check", "echo, decoded", "GetLatestReport, decoded (vs echo)",
				"echo, undecoded", "undecoded: the daemon's share (vs echo)", "polled, naming the run held", "gzipped, decoded (vs echo, decoded)")
			for _, m := range l.modes {
				pair := func(d [2]time.Duration) string { return ms(d[0]) + " / " + ms(d[1]) }
				vs := func(d, floor [2]time.Duration, what string) string {
					return fmt.Sprintf("%s (%.2fx%s)", pair(d), float64(d[1])/float64(floor[1]), what)
				}
				fmt.Printf("  %-20s %-20s %-22s %-40s %-22s %-42s %-46s %s\n", m.name, pair(m.health), pair(m.echo),
					vs(m.decoded, m.echo, "; target p99 <= 5ms"), pair(m.echoBytes),
					vs(m.undecoded, m.echoBytes, ""), vs(m.polled, m.health, " the health Check"), vs(m.gzipped, m.echo, ""))
			}
			for _, m := range l.modes {
				if g := m.decodedGC; g.calls > 0 {
					every := "none"
					if g.collections > 0 {
						every = "one every " + (g.took / time.Duration(g.collections)).Round(100*time.Millisecond).String()
					}
					fmt.Printf("  the daemon during the decoded calls, %s: %.0f garbage collection(s) in %s (%s); it allocated %.1f KB per call (all it allocated meanwhile, its own work and the /metrics readings included)\n",
						m.name, g.collections, g.took.Round(time.Second), every, g.allocated/float64(g.calls)/1000)
				}
			}
			fmt.Printf("  RSS after these calls, the %d connections open: %s\n", latestClients, mb(l.rssAfter))
		}
	}
	if hold {
		fmt.Fprintf(os.Stderr, "bench: holding; config %s, kubeconfig %s\n", cfgPath, lab.Kubeconfig)
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
	}
	return nil
}

// measure runs a command with stdout to /dev/null and returns its wall time
// and peak RSS in KiB. The command is started by a small copy of this
// program (see measureChild): a child's ru_maxrss includes the memory of
// the process it was forked from, and this process holds a whole cluster.
func measure(name string, args []string, okCode int) (time.Duration, int64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Env = append(os.Environ(), measureEnv+"="+strconv.Itoa(okCode))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var wallNS, rss int64
	var killed string
	if _, err := fmt.Sscan(stdout.String(), &wallNS, &rss, &killed); err != nil {
		return 0, 0, fmt.Errorf("measure output %q: %v", stdout.String(), err)
	}
	if killed != "-" {
		killedBy[name] = killed
	}
	return time.Duration(wallNS), rss, nil
}

const measureEnv = "VNODEDIAG_BENCH_MEASURE"

// measureChild is the small process that runs one command and prints its
// wall time (ns) and peak RSS (KiB, getrusage of the child).
func measureChild(okCode string, argv []string) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = devnull, os.Stderr
	start := time.Now()
	if err = cmd.Start(); err == nil {
		// If the machine runs out of memory, the measured command (not the
		// API server everything depends on) is the one to go.
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", cmd.Process.Pid), []byte("1000"), 0)
		err = cmd.Wait()
	}
	wall := time.Since(start)
	killed := "-"
	if ee, ok := err.(*exec.ExitError); ok {
		if strconv.Itoa(ee.ExitCode()) == okCode {
			err = nil
		} else if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			// Killed (the OOM killer, on a cluster too big for it): its
			// time and peak RSS so far are lower bounds, still worth reporting.
			killed, err = ws.Signal().String(), nil
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(wall.Nanoseconds(), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, strings.ReplaceAll(killed, " ", "-"))
	os.Exit(0)
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func load(ctx context.Context, lab *kubelab.Lab, objs []any, workers int) error {
	// Nodes and namespaces first, so pods never race their namespace.
	var first, rest []any
	for _, o := range objs {
		if _, ok := o.(interface{ GetNamespace() string }); ok && !isNode(o) {
			rest = append(rest, o)
		} else {
			first = append(first, o)
		}
	}
	if err := parallel(ctx, lab, first, workers); err != nil {
		return err
	}
	return parallel(ctx, lab, rest, workers)
}

func parallel(ctx context.Context, lab *kubelab.Lab, objs []any, workers int) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	total := int64(len(objs))
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				if err := lab.Apply(ctx, objs[i]); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if i > 0 && i%10000 == 0 {
					fmt.Fprintf(os.Stderr, "bench: loaded %d/%d objects (%s)\n", i, total, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
