package probe_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent/probe"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/vnodelab"
)

// lines are the lines written to out so far.
func linesOf(out *diagtest.SyncBuffer) []string {
	s := strings.TrimRight(out.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func testConfig(target string) *probe.Config {
	return &probe.Config{
		Interval: diag.Duration(time.Hour),
		DNS:      probe.DNSConfig{VPCResolvers: []string{}, ResolvConf: "/nonexistent"},
		Targets:  []probe.Target{{Name: "db", Address: target}},
		Metadata: probe.MetadataConfig{Disabled: true},
	}
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Addr().String()
}

func startAgent(t *testing.T, cfg *probe.Config, creds credentials.TransportCredentials) (*diagtest.SyncBuffer, string) {
	t.Helper()
	out := &diagtest.SyncBuffer{}
	a, err := probe.New(cfg, probe.Options{Out: out, Identity: probe.Identity{Namespace: "vnodediag", Pod: "agent-0", Node: "vnode-1", PodIP: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	l, addr := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, l, creds) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return out, addr
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) pb.ProbeServiceClient {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pb.NewProbeServiceClient(cc)
}

func TestAgentServesAndWritesRounds(t *testing.T) {
	target, _ := listen(t)
	defer target.Close()
	out, addr := startAgent(t, testConfig(target.Addr().String()), nil)
	c := dial(t, addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	info, err := c.Info(ctx, &pb.ProbeInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Pod != "agent-0" || info.Node != "vnode-1" || info.Version == "" || len(info.Plan.Targets) != 1 || info.Interval.AsDuration() != time.Hour {
		t.Errorf("info %v", info)
	}
	r, err := c.Run(ctx, &pb.ProbeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Trigger != "rpc" || len(r.Connects) != 1 || r.Connects[0].Outcome != pb.ConnectResult_CONNECTED || r.Agent.GetPod() != "agent-0" {
		t.Errorf("round %v", r)
	}

	// Safety: a caller cannot widen the plan.
	_, err = c.Run(ctx, &pb.ProbeRunRequest{Plan: &pb.ProbePlan{Targets: []*pb.ProbeTarget{{Address: "10.9.9.9:22"}}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not in the agent's plan") {
		t.Errorf("widened plan: %v", err)
	}

	// The interval round reached stdout as one protojson line; RPC rounds
	// do not (the log is the agent's own rounds).
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if lines = linesOf(out); len(lines) > 0 {
			break
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d lines on stdout, want 1 (the first interval round)", len(lines))
	}
	got := &pb.ProbeRound{}
	if err := protojson.Unmarshal([]byte(lines[0]), got); err != nil {
		t.Fatalf("line is not a ProbeRound: %v\n%s", err, lines[0])
	}
	if got.Trigger != "interval" || got.Sequence == 0 || got.EndTime == nil || got.Agent.GetPlan() == nil {
		t.Errorf("logged round %v", got)
	}
}

// TestAgentMutualTLS: with a client CA, only clients it signed get in.
func TestAgentMutualTLS(t *testing.T) {
	ca, err := vnodelab.NewCA(t.TempDir(), "agent")
	if err != nil {
		t.Fatal(err)
	}
	certF, keyF, err := ca.Issue("agent", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey, err := ca.Issue("vnodediag", nil)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := probe.ServerTLS(certF, keyF, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := listen(t)
	defer target.Close()
	_, addr := startAgent(t, testConfig(target.Addr().String()), creds)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	anon := dial(t, addr, credentials.NewTLS(&tls.Config{RootCAs: pool}))
	if _, err := anon.Info(ctx, &pb.ProbeInfoRequest{}); err == nil {
		t.Error("a client without a certificate got in")
	}
	plain := dial(t, addr, nil)
	if _, err := plain.Info(ctx, &pb.ProbeInfoRequest{}); err == nil {
		t.Error("a plaintext client got in")
	}
	kp, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	ok := dial(t, addr, credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}}))
	if _, err := ok.Info(ctx, &pb.ProbeInfoRequest{}); err != nil {
		t.Errorf("signed client: %v", err)
	}

	if _, err := probe.ServerTLS(certF, "", ""); err == nil || !strings.Contains(err.Error(), "both a certificate and a key") {
		t.Errorf("cert without key: %v", err)
	}
}

// TestAgentRunsOneRPCRoundAtATime: concurrent callers queue; they cannot
// multiply the agent's probes.
func TestAgentRunsOneRPCRoundAtATime(t *testing.T) {
	target, _ := listen(t)
	defer target.Close()
	_, addr := startAgent(t, testConfig(target.Addr().String()), nil)
	c := dial(t, addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	rounds := make([]*pb.ProbeRound, 4)
	for i := range rounds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Run(ctx, &pb.ProbeRunRequest{})
			if err != nil {
				t.Error(err)
				return
			}
			rounds[i] = r
		}()
	}
	wg.Wait()
	for i, a := range rounds {
		for j, b := range rounds {
			if i == j || a == nil || b == nil {
				continue
			}
			as, ae := a.StartTime.AsTime(), a.EndTime.AsTime()
			bs := b.StartTime.AsTime()
			if bs.After(as) && bs.Before(ae) {
				t.Errorf("round %d started at %s while round %d ran (%s to %s)", j, bs, i, as, ae)
			}
		}
	}
}
