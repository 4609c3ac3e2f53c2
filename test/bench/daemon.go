package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/callers"
)

// daemonFigures are the daemon's: its memory with the cache warm and the
// latency of Diagnose answered from the cache.
type daemonFigures struct {
	warm         time.Duration // from start to the first answer (the cache synced)
	rss, peakRSS int64         // KiB: after the calls, and the high-water mark
	anon, file   int64         // KiB of rss: the process's own memory, and the binary's (and other files') pages
	p50, p99     time.Duration
	calls        int
	latest       *latestFigures // nil when GetLatestReport was not measured
}

// latestFigures are GetLatestReport's from 100 concurrent clients, each
// on its own connection, beside two floors: the daemon's own health Check
// (the least a call through the same server costs) and a bare gRPC echo
// server sending the same reply (the least sending and decoding those
// bytes costs).
type latestFigures struct {
	bytes, gzBytes, results, states int
	modes                           []latestMode
	rssAfter                        int64 // KiB, after the calls (the 100 connections still open)
}

// latestMode is one pacing's percentiles: the floors (the daemon's health
// Check; a bare echo server sending the same reply, decoded and kept as
// bytes), the reply decoded as a client does, the reply's bytes kept
// undecoded (the daemon's share), clients that poll naming the run
// they hold (the whole reply once per client per run, else "unchanged"),
// and clients that ask for the reply gzipped and decode it.
type latestMode struct {
	name                                                         string
	health, echo, echoBytes, decoded, undecoded, polled, gzipped [2]time.Duration // p50, p99
	// decodedGC is the daemon's garbage collection during the decoded
	// calls.
	decodedGC daemonGC
}

// daemonGC is what the daemon's Go runtime did over some calls, from its
// own metrics (go_gc_duration_seconds_count, go_memstats_alloc_bytes_total)
// read before and after them: the reading of /metrics itself is counted.
type daemonGC struct {
	collections, allocated float64
	calls                  int
	took                   time.Duration
}

// gcMetrics reads the daemon's collection count and bytes allocated so far
// from its metrics listener at addr.
func gcMetrics(addr string) (collections, allocated float64, err error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var seen int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var into *float64
		switch name {
		case "go_gc_duration_seconds_count":
			into = &collections
		case "go_memstats_alloc_bytes_total":
			into = &allocated
		default:
			continue
		}
		if *into, err = strconv.ParseFloat(value, 64); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("the daemon's metrics lack go_gc_duration_seconds_count or go_memstats_alloc_bytes_total")
	}
	return collections, allocated, nil
}

// measureDaemon starts `vnodediag serve` on a loopback port, waits for its
// first Diagnose answer (the watch cache synced), then makes calls
// Diagnose calls one after another and reads the process's RSS.
func measureDaemon(bin, cfgPath string, only []string, calls int, latest bool, gc *apiGC) (*daemonFigures, error) {
	// Two free ports, both held until both are found so they differ.
	var addrs [2]string // gRPC, metrics
	var ls []net.Listener
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addrs[i] = l.Addr().String()
	}
	for _, l := range ls {
		_ = l.Close()
	}
	addr, metricsAddr := addrs[0], addrs[1]
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--listen", addr, "--metrics-address", metricsAddr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", cmd.Process.Pid), []byte("1000"), 0)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	conn, err := callers.Dial(addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := pb.NewDiagnosticsServiceClient(conn)
	diagnose := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := client.Diagnose(ctx, &pb.DiagnoseRequest{Only: only})
		return err
	}
	f := &daemonFigures{calls: calls}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		err := diagnose(10 * time.Minute)
		if err == nil {
			break
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("serve exited (%v): %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no answer from serve: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	f.warm = time.Since(start)
	for range 3 {
		if err := diagnose(time.Minute); err != nil {
			return nil, err
		}
	}
	var lat []time.Duration
	for range calls {
		t := time.Now()
		if err := diagnose(time.Minute); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	f.p50, f.p99 = callers.Percentile(lat, 50), callers.Percentile(lat, 99)
	time.Sleep(2 * time.Second)
	if f.rss, f.peakRSS, f.anon, f.file, err = procRSS(cmd.Process.Pid); err != nil {
		return nil, err
	}
	if latest {
		if f.latest, err = measureLatest(addr, metricsAddr, gc); err != nil {
			return nil, fmt.Errorf("GetLatestReport: %w", err)
		}
		if f.latest.rssAfter, _, _, _, err = procRSS(cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// latestClients is how many clients call GetLatestReport at once.
const latestClients = 100

// measureLatest waits for the daemon's first periodic report, then calls
// GetLatestReport from latestClients clients at once, paced as `make
// bench-daemon` paces them (callers.Paces); the floors (the daemon's health
// Check, and a bare echo server sending the same reply's bytes) and the
// undecoded reply likewise, taking turns. Around each round of the
// decoded calls it reads the daemon's collections and bytes allocated from
// its metrics listener at metricsAddr.
func measureLatest(addr, metricsAddr string, gc *apiGC) (*latestFigures, error) {
	conns, err := dialClients(addr)
	if err != nil {
		return nil, err
	}
	defer closeClients(conns)
	// The first periodic report, as its bytes: the echo server sends the
	// same ones.
	var reply []byte
	for deadline := time.Now().Add(15 * time.Minute); ; time.Sleep(time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		reply, err = callers.LatestReportReply(ctx, conns[0])
		cancel()
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			return nil, err
		}
	}
	var rep pb.LatestReport
	if err := proto.Unmarshal(reply, &rep); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	z := gzip.NewWriter(&gz)
	if _, err := z.Write(reply); err != nil {
		return nil, err
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	f := &latestFigures{bytes: len(reply), gzBytes: gz.Len(), results: len(rep.GetReport().GetResults()), states: len(rep.GetStates())}
	echo, err := startEcho(reply)
	if err != nil {
		return nil, fmt.Errorf("the echo server: %w", err)
	}
	defer echo.stop()
	echoConns, err := dialClients(echo.addr)
	if err != nil {
		return nil, err
	}
	defer closeClients(echoConns)
	poll := callers.Poller()
	for _, m := range callers.Paces {
		mode := latestMode{name: m.Name}
		calls := []struct {
			name  string
			call  func(context.Context, *grpc.ClientConn) error
			conns []*grpc.ClientConn
			into  *[2]time.Duration
		}{
			{"health Check", callers.HealthCheck, conns, &mode.health},
			{"echo", callers.Echo, echoConns, &mode.echo},
			{"echo undecoded", callers.EchoBytes, echoConns, &mode.echoBytes},
			{"decoded", callers.LatestReport, conns, &mode.decoded},
			{"undecoded", callers.LatestReportBytes, conns, &mode.undecoded},
			{"polled", poll, conns, &mode.polled},
			{"gzipped", callers.LatestReportGzip, conns, &mode.gzipped},
		}
		lat := make([][]time.Duration, len(calls))
		// The kinds take turns, latencyRounds rounds of a fifth of the
		// calls each, so that a burst of another process on the machine
		// falls on all of them alike rather than on whichever kind it
		// happened to meet.
		for round := range latencyRounds {
			// A round is started when it ends before the API server's
			// next collection (apiGC): the daemon's and the echo's calls
			// alike are measured between collections.
			gc.wait(time.Duration(len(calls)*m.Calls/latencyRounds)*m.Every + 5*time.Second)
			for k, c := range calls {
				call := func(i int) error {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					return c.call(ctx, c.conns[i])
				}
				if round == 0 {
					// One call on each connection first, not measured: a
					// connection is made at its first call, and its
					// flow-control window grows over its first replies.
					for i := range c.conns {
						if err := call(i); err != nil {
							return nil, fmt.Errorf("%s: %w", c.name, err)
						}
					}
				}
				var before [2]float64
				if c.into == &mode.decoded {
					if before[0], before[1], err = gcMetrics(metricsAddr); err != nil {
						return nil, err
					}
				}
				began := time.Now()
				l, err := callers.Drive(latestClients, m.Calls/latencyRounds, call, callers.Paced(time.Now().Add(100*time.Millisecond), m.Every, latestClients))
				if err != nil {
					return nil, fmt.Errorf("%s: %w", c.name, err)
				}
				lat[k] = append(lat[k], l...)
				if c.into == &mode.decoded {
					took := time.Since(began)
					n, a, err := gcMetrics(metricsAddr)
					if err != nil {
						return nil, err
					}
					g := &mode.decodedGC
					g.collections += n - before[0]
					g.allocated += a - before[1]
					g.calls += len(l)
					g.took += took
				}
			}
		}
		for k, c := range calls {
			slices.Sort(lat[k])
			*c.into = [2]time.Duration{callers.Percentile(lat[k], 50), callers.Percentile(lat[k], 99)}
		}
		f.modes = append(f.modes, mode)
	}
	return f, nil
}

// latencyRounds is how many turns the kinds of call take in each pacing.
const latencyRounds = 5

// dialClients opens latestClients connections to addr, one per client.
func dialClients(addr string) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, latestClients)
	for range latestClients {
		cc, err := callers.Dial(addr)
		if err != nil {
			closeClients(conns)
			return nil, err
		}
		conns = append(conns, cc)
	}
	return conns, nil
}

func closeClients(conns []*grpc.ClientConn) {
	for _, cc := range conns {
		_ = cc.Close()
	}
}

// echoFlag makes this program the bare echo server: it reads a reply from
// stdin, listens on a loopback port, prints its address and answers every
// call with that reply (callers.NewEchoServer) until it is killed. It runs
// in a process of its own, as the daemon does, so it shares neither the
// clients' nor the daemon's garbage collector.
const echoFlag = "-echo-serve"

func echoServe() error {
	reply, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(l.Addr())
	return callers.NewEchoServer(reply).Serve(l)
}

// echoProcess is a running echo server.
type echoProcess struct {
	addr string
	cmd  *exec.Cmd
}

// startEcho starts this program as the echo server of reply.
func startEcho(reply []byte) (*echoProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, echoFlag)
	cmd.Stdin = bytes.NewReader(reply)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &echoProcess{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("no address: %w", err)
	}
	e.addr = strings.TrimSpace(line)
	return e, nil
}

// stop kills the echo server by its PID and reaps it.
func (e *echoProcess) stop() {
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
}

// procRSS reads VmRSS, VmHWM, RssAnon and RssFile (KiB) of a process.
func procRSS(pid int) (rss, hwm, anon, file int64, err error) {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		case "RssAnon:":
			anon = v
		case "RssFile:":
			file = v
		}
	}
	return rss, hwm, anon, file, sc.Err()
}
