package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/diag/server"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

var binPath string

// TestMain builds the real binary once: exit codes and signals are tested
// on a real process.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vnodediag-cmd-test-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "vnodediag")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runBin(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "KUBECONFIG="), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageErrorsExit64(t *testing.T) {
	badCfg := writeFile(t, "bad.yaml", "kubernetes:\n  kubeconfg: /x\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"diagnose", "--kubeconfig", "/nonexistent"}, `kubeconfig "/nonexistent": stat /nonexistent: no such file or directory`},
		{[]string{"diagnose", "--only", "k8s.nope"}, `unknown check ID or prefix "k8s.nope"; valid IDs: `},
		{[]string{"diagnose", "-o", "xml"}, `-o "xml": want one of table, json, yaml, junit`},
		{[]string{"diagnose", "--fail-on", "error"}, `--fail-on "error": want fail or warn`},
		{[]string{"diagnose", "--config", badCfg}, `line 2: unknown field "kubeconfg"`},
		{[]string{"diagnose", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"diagnose"}, "kubeconfig"}, // nothing found by the standard rules
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, stderr, code := runBin(t, nil, c.args...)
			if code != 64 {
				t.Errorf("exit %d, want 64; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q does not contain %q", stderr, c.want)
			}
		})
	}
}

func unreachableKubeconfig(t *testing.T) string {
	return writeFile(t, "kubeconfig", `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: s3cr3t-token-value}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`)
}

func TestUnreachableAPIServerExits2(t *testing.T) {
	stdout, stderr, code := runBin(t, nil, "diagnose", "--kubeconfig", unreachableKubeconfig(t), "-o", "json")
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %s", code, stderr)
	}
	rep := &pb.Report{}
	if err := protojson.Unmarshal([]byte(stdout), rep); err != nil {
		t.Fatalf("stdout is not a protojson Report: %v\n%s", err, stdout)
	}
	if rep.Summary.Error == 0 || rep.Summary.Pass+rep.Summary.Fail != 0 {
		t.Errorf("summary %v: want only ERROR (and SKIP) results", rep.Summary)
	}
	if strings.Contains(stdout+stderr, "s3cr3t-token-value") {
		t.Error("the kubeconfig token leaked into the output")
	}
}

func TestChecksAndVersion(t *testing.T) {
	out, _, code := runBin(t, nil, "checks")
	if code != 0 || !strings.Contains(out, "k8s.providerid-format") {
		t.Errorf("checks: exit %d, output %s", code, out)
	}
	out, _, code = runBin(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "vnodediag ") {
		t.Errorf("version: exit %d, output %s", code, out)
	}
	out, _, code = runBin(t, nil, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__vnodediag") {
		t.Errorf("completion: exit %d", code)
	}
	out, _, _ = runBin(t, nil, "diagnose", "--help")
	if !strings.Contains(out, "Examples:") || !strings.Contains(out, "Exit codes") {
		t.Errorf("diagnose --help lacks examples or exit codes:\n%s", out)
	}
}

// normalize drops what differs between two runs of the same checks.
func normalize(rep *pb.Report) *pb.Report {
	r := proto.Clone(rep).(*pb.Report)
	r.RunId, r.StartTime, r.EndTime = "", nil, nil
	for _, res := range r.Results {
		res.Duration = nil
	}
	for _, s := range r.Sources {
		s.Duration = nil
	}
	return r
}

// TestGRPCMatchesInProcess: Diagnose over loopback gRPC returns the same
// report as the in-process run, and the CLI's --server path renders it.
func TestGRPCMatchesInProcess(t *testing.T) {
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse([]byte("kubernetes:\n  kubeconfig: " + lab.Kubeconfig + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := runnerFor(c)
	if err != nil {
		t.Fatal(err)
	}
	local := r.Run(ctx, allChecks())

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := server.New(&server.Service{Checks: allChecks(), Runner: r})
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	remote, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(ctx, &pb.DiagnoseRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(normalize(local), normalize(remote)) {
		t.Errorf("reports differ:\nlocal  %v\nremote %v", normalize(local), normalize(remote))
	}

	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "vnodediag.v1.DiagnosticsService"})
	if err != nil || hc.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", hc, err)
	}
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
	resp, err := stream.Recv()
	if err != nil || !strings.Contains(resp.String(), "vnodediag.v1.DiagnosticsService") {
		t.Errorf("reflection does not list the service: %v %v", resp, err)
	}

	// The CLI against the daemon: same exit code as in-process (faults -> 1).
	out, stderr, code := runBin(t, nil, "diagnose", "--server", lis.Addr().String(), "--only", "k8s.providerid-format")
	if code != 1 || !strings.Contains(out, "ecs-bad-2") {
		t.Errorf("--server: exit %d, stdout %s, stderr %s", code, out, stderr)
	}
	_, stderr, code = runBin(t, nil, "diagnose", "--server", lis.Addr().String(), "--only", "nope")
	if code != 64 || !strings.Contains(stderr, "valid IDs") {
		t.Errorf("--server with unknown ID: exit %d, stderr %s", code, stderr)
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	cmd := exec.Command(binPath, "serve", "--kubeconfig", unreachableKubeconfig(t), "--listen", addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "serving gRPC") {
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _, code := runBin(t, nil, "diagnose", "--server", addr, "-o", "json")
	rep := &pb.Report{}
	if err := protojson.Unmarshal([]byte(out), rep); err != nil || code != 2 || rep.Summary.GetError() == 0 {
		t.Errorf("daemon with unreachable API server: exit %d, want 2 with ERROR results", code)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exit after SIGTERM: %v; %s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
}
