package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// daemonFigures are the daemon's: its memory with the cache warm and the
// latency of Diagnose answered from the cache.
type daemonFigures struct {
	warm         time.Duration // from start to the first answer (the cache synced)
	rss, peakRSS int64         // KiB: after the calls, and the high-water mark
	anon, file   int64         // KiB of rss: the process's own memory, and the binary's (and other files') pages
	p50, p99     time.Duration
	calls        int
}

// measureDaemon starts `vnodediag serve` on a loopback port, waits for its
// first Diagnose answer (the watch cache synced), then makes calls
// Diagnose calls one after another and reads the process's RSS.
func measureDaemon(bin, cfgPath string, only []string, calls int) (*daemonFigures, error) {
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
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	f.p50 = lat[len(lat)/2]
	f.p99 = lat[min(len(lat)-1, (len(lat)*99+99)/100-1)]
	time.Sleep(2 * time.Second)
	f.rss, f.peakRSS, f.anon, f.file, err = procRSS(cmd.Process.Pid)
	return f, err
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
