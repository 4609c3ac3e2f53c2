package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/diag/diagtest"
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
	cfg := func(content string) string { return writeFile(t, "vnodediag.yaml", content) }
	// The registered families make the catalog and the file's sections.
	nChecks := strconv.Itoa(len(app.Checks()))
	var keys []string
	for _, s := range app.Sections() {
		keys = append(keys, s.Key)
	}
	topLevel := strings.Join(keys, ", ")
	kc := unreachableKubeconfig(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"diagnose", "--kubeconfig", "/nonexistent"}, `kubeconfig "/nonexistent": stat /nonexistent: no such file or directory`},
		{[]string{"diagnose", "--only", "k8s.nope"}, `unknown check ID or prefix "k8s.nope"; valid IDs: `},
		{[]string{"diagnose", "-o", "xml"}, `-o "xml": want one of table, json, yaml, junit, html`},
		{[]string{"diagnose", "--fail-on", "error"}, `--fail-on "error": want fail or warn`},
		{[]string{"diagnose", "--config", cfg("kubernetes:\n  kubeconfg: /x\n")}, `line 2: unknown field "kubeconfg" in kubernetes; valid fields: kubeconfig, context, cluster, user, namespace, as, asGroups, serviceCIDRs, pageSize, requestTimeout`},
		{[]string{"diagnose", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"diagnose"}, "kubeconfig"}, // nothing found by the standard rules
		// Deadlines: zero or negative is a usage error naming the flag.
		{[]string{"diagnose", "--timeout", "0"}, "vnodediag: --timeout 0s: want a positive duration like 5m\n"},
		{[]string{"diagnose", "--timeout", "-1s"}, "vnodediag: --timeout -1s: want a positive duration like 5m\n"},
		{[]string{"diagnose", "--check-timeout", "-1s"}, "vnodediag: --check-timeout -1s: want a positive duration like 30s\n"},
		{[]string{"diagnose", "--check-timeout", "0s"}, "vnodediag: --check-timeout 0s: want a positive duration like 30s\n"},
		{[]string{"diagnose", "--source-timeout", "0"}, "vnodediag: --source-timeout 0s: want a positive duration like 30s\n"},
		{[]string{"serve", "--source-timeout", "-5m"}, "vnodediag: --source-timeout -5m0s: want a positive duration like 30s\n"},
		{[]string{"serve", "--shutdown-grace", "-1s"}, "vnodediag: --shutdown-grace -1s: want a duration of 0 or more\n"},
		// The daemon's address is checked before anything is dialled.
		{[]string{"diagnose", "--server", "junk:::"}, `vnodediag: --server "junk:::": want host:port, like 127.0.0.1:7443: address junk:::: too many colons in address` + "\n"},
		{[]string{"diagnose", "--server", "127.0.0.1"}, `vnodediag: --server "127.0.0.1": want host:port, like 127.0.0.1:7443: address 127.0.0.1: missing port in address` + "\n"},
		{[]string{"diagnose", "--server", "127.0.0.1:0"}, `vnodediag: --server "127.0.0.1:0": port "0" is not 1-65535` + "\n"},
		{[]string{"diagnose", "--server", ":7443"}, `vnodediag: --server ":7443": want host:port, like 127.0.0.1:7443: the host is missing` + "\n"},
		{[]string{"diagnose", "--server", "run/x:7443"}, `vnodediag: --server "run/x:7443": host "run/x" is neither an IP address nor a DNS name` + "\n"},
		// A selection that runs nothing (diag.Select refuses it).
		{[]string{"diagnose", "--kubeconfig", kc, "--only", "k8s", "--skip", "k8s"}, `vnodediag: selection is empty: only "k8s", skip "k8s" leaves none of the ` + nChecks + ` checks` + "\n"},
		{[]string{"diagnose", "--config", cfg("kubernetes: {}\nrunner:\n  only: [dns]\n  skip: [dns.resolver-reachable, dns.privatezone-from-onprem, dns.onprem-from-cloud, dns.cluster-domain-overlap, dns.coredns-forward]\n")},
			`vnodediag: selection is empty: only "dns", skip "dns.resolver-reachable", "dns.privatezone-from-onprem", "dns.onprem-from-cloud", "dns.cluster-domain-overlap", "dns.coredns-forward" leaves none of the ` + nChecks + ` checks` + "\n"},
		// Config files.
		{[]string{"diagnose", "--config", cfg("# kubernetes:\n#   context: prod\n")}, ": no settings: the file is empty or holds only comments\n"},
		{[]string{"diagnose", "--config", cfg("kubernetes: {}\n---\nkubernetes:\n  context: other\n")}, ": config has 2 YAML documents; want one (the second starts on line 3)\n"},
		{[]string{"diagnose", "--config", cfg("bgp:\n  localASN: 65010\n  routerID: 192.0.2.10\n  EstablishTIMEOUT: 30s\n  peers: [{address: 192.0.2.1, asn: 65001}]\n")},
			`: line 4: unknown field "EstablishTIMEOUT" in bgp; did you mean "establishTimeout"? (field names are case-sensitive)` + "\n"},
		{[]string{"diagnose", "--config", cfg("kubernetes: {}\nrunner:\n  checkTimeout: 0s\n")}, `: line 3: runner.checkTimeout: "0s" is not a positive duration like "30s"` + "\n"},
		{[]string{"diagnose", "--config", cfg("kubernetes: {}\nrunner:\n  sourceTimeout: -1m\n")}, `: line 3: runner.sourceTimeout: "-1m" is not a positive duration like "30s"` + "\n"},
		{[]string{"diagnose", "--config", cfg("dns:\n  onPremResolvers: [{name: a, address: 'fe80::1%lo'}]\n")},
			`dns: onPremResolvers[0] "a": address: "fe80::1%lo": zone-scoped IPv6 address (%lo) is not supported; use a global or unique-local address` + "\n"},
		{[]string{"diagnose", "--config", cfg("dns:\n  onPremResolvers: [{name: a, address: 127.0.0.3}, {name: b, address: '::ffff:127.0.0.3'}]\n")},
			`dns: onPremResolvers[1] "b": address 127.0.0.3:53 is also onPremResolvers[0] "a"` + "\n"},
		// A terminal escape in the config reaches stderr escaped.
		{[]string{"diagnose", "--config", cfg("kubernetes: {}\n\"evil\\e]0;pwned\\a\": 1\n")}, `: line 2: unknown field "evil\x1b]0;pwned\a"; valid fields: ` + topLevel + ", runner\n"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Parallel()
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
	c, err := config.Parse([]byte("kubernetes:\n  kubeconfig: "+lab.Kubeconfig+"\n"), app.Sections())
	if err != nil {
		t.Fatal(err)
	}
	r, err := runnerFor(c, false)
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

// TestServeGracefulShutdown: a daemon whose API server is unreachable
// answers with ERROR results, and exits 0 on SIGTERM (startServe sends it
// when the test ends and fails the test otherwise).
func TestServeGracefulShutdown(t *testing.T) {
	addr, _ := startServe(t)
	out, _, code := runBin(t, nil, "diagnose", "--server", addr, "-o", "json")
	rep := &pb.Report{}
	if err := protojson.Unmarshal([]byte(out), rep); err != nil || code != 2 || rep.Summary.GetError() == 0 {
		t.Errorf("daemon with unreachable API server: exit %d, want 2 with ERROR results", code)
	}
}

// runnerFunc adapts a function to server.Runner.
type runnerFunc func(ctx context.Context, checks []diag.Check) *pb.Report

func (f runnerFunc) Run(ctx context.Context, checks []diag.Check) *pb.Report { return f(ctx, checks) }

// serveTest starts a daemon with svc on a loopback port for the test.
func serveTest(t *testing.T, svc pb.DiagnosticsServiceServer, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var gs *grpc.Server
	if s, ok := svc.(*server.Service); ok {
		gs = server.New(s, opts...)
	} else {
		gs = grpc.NewServer(opts...)
		pb.RegisterDiagnosticsServiceServer(gs, svc)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return lis.Addr().String()
}

// passReport is a report of about size bytes of PASS results.
func passReport(size int) *pb.Report {
	rep := &pb.Report{RunId: "big", Summary: &pb.Summary{}}
	chunk := strings.Repeat("x", 1000)
	for range size / 1000 {
		rep.Results = append(rep.Results, &pb.Result{CheckId: "k8s.providerid-format", Status: pb.Status_PASS, Summary: chunk})
		rep.Summary.Pass++
	}
	return rep
}

// hostileDaemon answers every Diagnose with err.
type hostileDaemon struct {
	pb.UnimplementedDiagnosticsServiceServer
	err error
}

func (h hostileDaemon) Diagnose(context.Context, *pb.DiagnoseRequest) (*pb.Report, error) {
	return nil, h.err
}

// The CLI reads any report the daemon may send (a 10 MB one was exit 69
// "unreachable" with gRPC's 4 MiB default), names a reply over the limit
// with its size (exit 70), and tells a failing daemon from an unreachable
// one. What the daemon says reaches stderr escaped.
func TestDaemonReplies(t *testing.T) {
	big := serveTest(t, &server.Service{Checks: allChecks(), Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report { return passReport(10 << 20) })})
	out, stderr, code := runBin(t, nil, "diagnose", "--server", big, "-o", "json")
	rep := &pb.Report{}
	if code != 0 || protojson.Unmarshal([]byte(out), rep) != nil || len(rep.Results) != 10<<20/1000 {
		t.Errorf("10 MB report: exit %d, %d results, stderr %s", code, len(rep.Results), stderr)
	}

	huge := serveTest(t, &server.Service{Checks: allChecks(), Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report { return passReport(70 << 20) })},
		grpc.MaxSendMsgSize(128<<20))
	_, stderr, code = runBin(t, nil, "diagnose", "--server", huge)
	// The reply came gzipped (dialDaemon): gRPC measures it inflated.
	want := "vnodediag: daemon " + huge + ": the report is larger than the 64 MiB a message may carry: grpc: received message after decompression larger than max 67108864\n"
	if code != 70 || stderr != want {
		t.Errorf("70 MB report: exit %d, stderr %q; want 70 and %q", code, stderr, want)
	}

	panicky := serveTest(t, &server.Service{Checks: allChecks(), Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report { panic("boom") })})
	_, stderr, code = runBin(t, nil, "diagnose", "--server", panicky)
	if want := "vnodediag: daemon " + panicky + " failed: Internal: internal error in /vnodediag.v1.DiagnosticsService/DiagnoseStream; the daemon logged it\n"; code != 70 || stderr != want {
		t.Errorf("panicking daemon: exit %d, stderr %q; want 70, %q", code, stderr, want)
	}

	hostile := serveTest(t, hostileDaemon{err: status.Error(codes.InvalidArgument, "no such check \x1b]0;pwned\x07\x1b[2J\rok")})
	_, stderr, code = runBin(t, nil, "diagnose", "--server", hostile)
	if want := "vnodediag: no such check \\x1b]0;pwned\\x07\\x1b[2J\\x0dok\n"; code != 64 || stderr != want {
		t.Errorf("hostile daemon: exit %d, stderr %q; want 64, %q", code, stderr, want)
	}

	closed := diagtest.ClosedPort(t)
	_, stderr, code = runBin(t, nil, "diagnose", "--server", closed)
	if code != 69 || !strings.Contains(stderr, "vnodediag: daemon "+closed+" unreachable: Unavailable: ") {
		t.Errorf("no daemon: exit %d, stderr %q; want 69", code, stderr)
	}
}
