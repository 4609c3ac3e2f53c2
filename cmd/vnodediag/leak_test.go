package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// No goroutine survives the daemon's shutdown: `serve` in this process,
// with the Kubernetes, DNS and BGP sources against endpoints that accept
// and never answer (or refuse), one Diagnose call, then the end of its
// context as SIGTERM would.
func TestDaemonShutdownLeaksNothing(t *testing.T) {
	cfgs := hungConfigs(t)
	ignore := goleak.IgnoreCurrent() // the mute servers of this test
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr diagtest.SyncBuffer
	root := newRoot(&globalFlags{})
	root.SetArgs([]string{"serve", "--config", cfgs["all"], "--listen", "127.0.0.1:0", "--shutdown-grace", "5s", "--log-level", "error"})
	root.SetErr(&stderr)
	root.SetOut(&stderr)
	exited := make(chan error, 1)
	go func() { exited <- root.ExecuteContext(ctx) }()

	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if _, after, ok := strings.Cut(stderr.String(), "serving gRPC on "); ok {
			addr = strings.TrimSpace(after)
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start: %s", stderr.String())
		}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
	rep, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(callCtx, &pb.DiagnoseRequest{})
	callCancel()
	conn.Close()
	if err != nil {
		t.Errorf("Diagnose: %v", err)
	} else if rep.GetSummary().GetError() == 0 {
		t.Errorf("no ERROR for mute sources: %v", rep.GetSummary())
	}
	cancel()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not return after its context ended: %s", stderr.String())
	}
	// gobgp v3.37.0's Serve loop has no way to end: after Stop it stays
	// parked, holding an empty server (see bgp.Observer.Stop).
	gobgpServe := goleak.IgnoreAnyFunction("github.com/osrg/gobgp/v3/pkg/server.(*BgpServer).Serve")
	if err := goleak.Find(ignore, gobgpServe); err != nil {
		t.Error(fmt.Sprint(err))
	}
}
