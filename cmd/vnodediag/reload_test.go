package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// The real binary: SIGHUP with a broken file is rejected, logged, and the
// daemon goes on with the old configuration; a good file is applied.
// SIGTERM with a watch stream open ends the stream (UNAVAILABLE) and the
// process exits 0 well within --shutdown-grace.
func TestServeReloadAndTerm(t *testing.T) {
	cfgPath := writeFile(t, "config.yaml", "daemon:\n  interval: 1h\n")
	cmd := exec.Command(binPath, "serve", "--config", cfgPath, "--listen", "127.0.0.1:0", "--shutdown-grace", "10s", "--log-level", "warn")
	var stderr diagtest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	waitLog := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stderr.String(), want); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", want, stderr.String())
			}
		}
	}
	// The whole line: the port is the kernel's choice.
	served := regexp.MustCompile(`serving gRPC on (\S+)\n`)
	waitLog("serving gRPC on ")
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := served.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no address in %q", stderr.String())
		}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewDiagnosticsServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := os.WriteFile(cfgPath, []byte("daemon:\n  intervall: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog(`configuration reload rejected; the old configuration stays in force`)
	if !strings.Contains(stderr.String(), `intervall`) {
		t.Errorf("the rejection does not name the bad field:\n%s", stderr.String())
	}
	if _, err := client.ListChecks(ctx, &pb.ListChecksRequest{}); err != nil {
		t.Fatalf("after a rejected reload: %v", err)
	}
	if err := os.WriteFile(cfgPath, []byte("daemon:\n  interval: 2h\n  only: [k8s]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog(`msg="configuration reloaded"`)
	// The next periodic run follows the reload at once: only k8s checks.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		l, err := client.GetLatestReport(ctx, &pb.GetLatestReportRequest{})
		if err == nil && len(l.GetReport().GetResults()) > 0 && !strings.Contains(l.GetReport().String(), `check_id:"dns.`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no periodic run of the reloaded selection: %v", err)
		}
	}
	// vnodediag watch prints the current states, and ends with 69 when
	// the daemon goes.
	watchCmd := exec.Command(binPath, "watch", "--server", addr, "--only", "k8s", "--current")
	var watchOut, watchErr diagtest.SyncBuffer
	watchCmd.Stdout, watchCmd.Stderr = &watchOut, &watchErr
	if err := watchCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watchCmd.Process.Kill() }()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(watchOut.String(), "current k8s."); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("vnodediag watch printed no current state: %q %q", watchOut.String(), watchErr.String())
		}
	}

	watch, err := client.WatchReports(ctx, &pb.WatchReportsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	watchEnd := make(chan error, 1)
	go func() {
		for {
			if _, err := watch.Recv(); err != nil {
				watchEnd <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // the stream is open on the daemon
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("took %s, past the grace", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	select {
	case err := <-watchEnd:
		if c := status.Code(err); c != codes.Unavailable {
			t.Errorf("watch at shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the watch stream did not end")
	}
	err = watchCmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 69 || !strings.Contains(watchErr.String(), "Unavailable: the daemon is shutting down") {
		t.Errorf("vnodediag watch when the daemon stops: %v, stderr %q", err, watchErr.String())
	}
}
