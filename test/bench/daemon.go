package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
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
// on its own connection, beside the daemon's own health Check (a bare
// gRPC call through the same server: the floor).
type latestFigures struct {
	bytes, results, states int
	modes                  []latestMode
	rssAfter               int64 // KiB, after the calls (the 100 connections still open)
}

// latestMode is one pacing's percentiles: the floor, the reply decoded as
// a client does, and the reply's bytes kept undecoded (the daemon's share).
type latestMode struct {
	name                     string
	echo, decoded, undecoded [2]time.Duration // p50, p99
}

// measureDaemon starts `vnodediag serve` on a loopback port, waits for its
// first Diagnose answer (the watch cache synced), then makes calls
// Diagnose calls one after another and reads the process's RSS.
func measureDaemon(bin, cfgPath string, only []string, calls int, latest bool) (*daemonFigures, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--listen", addr)
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

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
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
		if f.latest, err = measureLatest(addr); err != nil {
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
// bench-daemon` paces them (callers.Paces); the floor and the undecoded
// reply likewise, one after the other.
func measureLatest(addr string) (*latestFigures, error) {
	conns := make([]*grpc.ClientConn, latestClients)
	for i := range conns {
		var err error
		if conns[i], err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20))); err != nil {
			return nil, err
		}
		defer conns[i].Close()
	}
	f := &latestFigures{}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rep, err := pb.NewDiagnosticsServiceClient(conns[0]).GetLatestReport(ctx, &pb.GetLatestReportRequest{})
		cancel()
		if err == nil {
			f.bytes, f.results, f.states = proto.Size(rep), len(rep.GetReport().GetResults()), len(rep.GetStates())
			break
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(time.Second)
	}
	for _, m := range callers.Paces {
		mode := latestMode{name: m.Name}
		for _, c := range []struct {
			name string
			call func(context.Context, *grpc.ClientConn) error
			into *[2]time.Duration
		}{{"health Check", callers.HealthCheck, &mode.echo}, {"decoded", callers.LatestReport, &mode.decoded}, {"undecoded", callers.LatestReportBytes, &mode.undecoded}} {
			lat, err := callers.Drive(latestClients, m.Calls, func(i int) error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				return c.call(ctx, conns[i])
			}, callers.Paced(time.Now().Add(100*time.Millisecond), m.Every, latestClients))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			*c.into = [2]time.Duration{callers.Percentile(lat, 50), callers.Percentile(lat, 99)}
		}
		f.modes = append(f.modes, mode)
	}
	return f, nil
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
