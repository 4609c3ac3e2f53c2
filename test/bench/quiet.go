package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// apiGC follows the CPU time of the API server the benchmark measures
// against, to time measurements between its garbage collections. Go's
// runtime collects at least every two minutes; at 150,000 pods the API
// server's heap is about 10 GB, and marking it takes 1.2–1.5 cores for
// about 5 s on a two-core machine. A run or a round of calls it falls in is
// slowed by seconds, whichever command or kind of call that is, so that
// the figures of one benchmark run said more about where the collections
// fell than about what was measured. A production API server does not
// share the diagnostics' two cores.
//
// A burst is seen only when nothing measured is running (the API server is
// busy serving the lists then anyway): before each measurement, wait
// finds whether it fits before the next collection is due and, if not,
// waits for that collection to pass. It is used by one goroutine, the
// one that measures.
type apiGC struct {
	pid int

	// lastEnd is when the last burst seen ended; zero before the first.
	lastEnd time.Time
	waited  int
	// off: a wait saw no burst in gcWaitMax, so the collections are too
	// small to see, and to matter.
	off bool
}

const (
	// gcQuiet is how long after a collection the next one is not due:
	// the runtime's two minutes, less a margin.
	gcQuiet = 110 * time.Second
	// gcWaitMax bounds a wait for a collection: a little over one period.
	gcWaitMax = 150 * time.Second
	// burstCores and idleCores are the API server's CPU use, in cores over
	// one sample, above which a sample is part of a burst and below which
	// the burst is over.
	burstCores = 0.8
	idleCores  = 0.25
	gcSample   = 250 * time.Millisecond
	// gcHeapMin is the API server's RSS below which its collections are
	// too short to matter: the measurements are not timed.
	gcHeapMin = 2 << 30
)

// findAPIServer returns the API server of kubeconfig when it runs on this
// machine (a process named kube-apiserver with that --secure-port) and
// holds at least gcHeapMin, or nil: the measurements are then not timed.
func findAPIServer(kubeconfig string) *apiGC {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return nil
	}
	ports := map[string]bool{}
	for _, c := range cfg.Clusters {
		if u, err := url.Parse(c.Server); err == nil && u.Port() != "" {
			ports["--secure-port="+u.Port()] = true
		}
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		if filepath.Base(args[0]) != "kube-apiserver" {
			continue
		}
		for _, a := range args[1:] {
			if ports[a] {
				pid, _ := strconv.Atoi(filepath.Base(d))
				if rss, _, _, _, err := procRSS(pid); err != nil || rss*1024 < gcHeapMin {
					return nil
				}
				return &apiGC{pid: pid}
			}
		}
	}
	return nil
}

// cpuTicks is the process's user and system time in clock ticks.
func (g *apiGC) cpuTicks() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", g.pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", g.pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q %q", g.pid, f[11], f[12])
	}
	return utime + stime, nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// wait returns at once when g is nil or a measurement taking need ends
// before the next collection is due; otherwise it waits until the API
// server's next burst has ended (at most gcWaitMax).
func (g *apiGC) wait(need time.Duration) {
	if g == nil {
		return
	}
	if g.off || !g.lastEnd.IsZero() && time.Since(g.lastEnd)+need < gcQuiet {
		return
	}
	prev, err := g.cpuTicks()
	if err != nil {
		return
	}
	start := time.Now()
	fmt.Fprintln(os.Stderr, "bench: waiting for the API server's next garbage collection ...")
	// A burst counts once the API server has been idle: what it still
	// does right after a measured command (finishing the lists) is not
	// a collection.
	idle, inBurst := false, false
	for deadline := time.Now().Add(gcWaitMax); time.Now().Before(deadline); {
		time.Sleep(gcSample)
		cur, err := g.cpuTicks()
		if err != nil {
			return
		}
		cores := float64(cur-prev) / clockTicks / gcSample.Seconds()
		prev = cur
		switch {
		case !idle:
			idle = cores < idleCores
		case cores > burstCores:
			inBurst = true
		case inBurst && cores < idleCores:
			g.lastEnd = time.Now()
			g.waited++
			fmt.Fprintf(os.Stderr, "bench: ... passed after %s\n", time.Since(start).Round(time.Second))
			return
		}
	}
	g.off = true
	fmt.Fprintf(os.Stderr, "bench: ... none in %s: not waiting for them again\n", gcWaitMax)
}

// waits is how many times wait waited for a burst to pass.
func (g *apiGC) waits() int {
	if g == nil {
		return 0
	}
	return g.waited
}
