package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag/diagtest"
)

// The security flags' combinations that cannot be right are usage errors
// that say what to pass.
func TestSecurityUsageErrors(t *testing.T) {
	tok := writeFile(t, "token", "s3cret\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listen", "0.0.0.0:0"}, "vnodediag: --listen 0.0.0.0:0 is not a loopback address and the daemon has no TLS: anyone who can reach it would read the cluster's diagnostics in clear; " +
			"give --tls-cert-file and --tls-key-file (and --client-ca-file or --token-file to authenticate callers), or --insecure-listen to serve plaintext anyway\n"},
		{[]string{"serve", "--listen", ":0"}, "vnodediag: --listen :0 is not a loopback address"},
		{[]string{"serve", "--listen", "daemon.example:7443"}, "vnodediag: --listen daemon.example:7443 is not a loopback address"},
		{[]string{"serve", "--listen", "0.0.0.0:0", "--insecure-listen", "--token-file", tok}, "vnodediag: --token-file on the non-loopback --listen 0.0.0.0:0 without TLS: callers would send the token in clear; give --tls-cert-file and --tls-key-file\n"},
		{[]string{"serve", "--tls-cert-file", tok}, "vnodediag: --tls-cert-file and --tls-key-file go together: give both\n"},
		{[]string{"serve", "--client-ca-file", tok}, "vnodediag: --client-ca-file needs TLS: give --tls-cert-file and --tls-key-file too\n"},
		{[]string{"serve", "--web-config-file", tok}, "vnodediag: --web-config-file configures the metrics listener: give --metrics-address too\n"},
		{[]string{"serve", "--tls-cert-file", tok, "--tls-key-file", tok}, "vnodediag: TLS certificate " + tok + ", " + tok + ": tls: failed to find any PEM data in certificate input\n"},
		{[]string{"serve", "--token-file", filepath.Join(t.TempDir(), "none")}, "vnodediag: bearer token: stat "},
		{[]string{"serve", "--metrics-address", "127.0.0.1:0", "--web-config-file", tok}, "vnodediag: --web-config-file: web config " + tok + ": "},
		{[]string{"diagnose", "--token-file", tok}, "vnodediag: --server-ca-file, --client-cert-file, --client-key-file, --server-name, --token-file and --insecure apply only with --server\n"},
		{[]string{"diagnose", "--server", "127.0.0.1:7443", "--insecure", "--server-ca-file", tok}, "vnodediag: --insecure contradicts --server-ca-file, --client-cert-file, --client-key-file and --server-name: leave it out to use TLS\n"},
		{[]string{"diagnose", "--server", "127.0.0.1:7443", "--client-cert-file", tok}, "vnodediag: --client-cert-file and --client-key-file go together: give both\n"},
		{[]string{"diagnose", "--server", "192.0.2.1:7443", "--insecure", "--token-file", tok}, "vnodediag: --token-file with --insecure to the non-loopback 192.0.2.1:7443: the token would cross the network in clear; serve the daemon with TLS\n"},
		{[]string{"diagnose", "--server", "127.0.0.1:7443", "--server-ca-file", tok}, "vnodediag: --server 127.0.0.1:7443: server CA " + tok + ": no PEM certificate in it\n"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runBin(t, nil, c.args...)
			if code != 64 {
				t.Errorf("exit %d, want 64; stderr: %s", code, stderr)
			}
			if !strings.HasPrefix(stderr, c.want) {
				t.Errorf("stderr %q does not start with %q", stderr, c.want)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("the token reached stderr: %s", stderr)
			}
		})
	}
}

// startServe starts `serve` with args and returns its gRPC and metrics
// addresses (the metrics one empty without --metrics-address). The daemon
// gets SIGTERM when the test ends and must exit 0, and its whole log must
// hold no secret of the tests (each has "s3cret" in it).
func startServe(t *testing.T, args ...string) (grpcAddr, metricsAddr string) {
	t.Helper()
	var stderr diagtest.SyncBuffer
	cmd := exec.Command(binPath, append([]string{"serve", "--kubeconfig", unreachableKubeconfig(t), "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon exit after SIGTERM: %v; %s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("daemon did not stop on SIGTERM")
		}
		if strings.Contains(stderr.String(), "s3cret") {
			t.Errorf("a secret reached the daemon's log:\n%s", stderr.String())
		}
	})
	grpcRe := regexp.MustCompile(`serving gRPC on (\S+)`)
	metricsRe := regexp.MustCompile(`serving metrics on (\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := grpcRe.FindStringSubmatch(stderr.String()); m != nil {
			grpcAddr = m[1]
			if m := metricsRe.FindStringSubmatch(stderr.String()); m != nil {
				metricsAddr = m[1]
			}
			return grpcAddr, metricsAddr
		}
		select {
		case err := <-done:
			t.Fatalf("daemon exited: %v: %s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start: %s", stderr.String())
		}
	}
}

// The daemon with TLS, mTLS and a token, asked by the CLI: a client
// certificate or the token gets the report (exit 2: the API server is
// unreachable, its checks ERROR); neither is refused with a hint (69); a
// client that does not trust the daemon's CA cannot connect (69). The
// metrics listener, behind TLS, counts what the calls ran.
func TestServeSecured(t *testing.T) {
	dir := t.TempDir()
	ca, other := diagtest.NewCA(t, "ca"), diagtest.NewCA(t, "other")
	caFile := diagtest.WriteFile(t, filepath.Join(dir, "ca.crt"), ca.PEM)
	otherFile := diagtest.WriteFile(t, filepath.Join(dir, "other.crt"), other.PEM)
	sc, sk := ca.Valid(t, false)
	certFile := diagtest.WriteFile(t, filepath.Join(dir, "tls.crt"), sc)
	keyFile := diagtest.WriteFile(t, filepath.Join(dir, "tls.key"), sk)
	cc, ck := ca.Valid(t, true)
	clientCert := diagtest.WriteFile(t, filepath.Join(dir, "client.crt"), cc)
	clientKey := diagtest.WriteFile(t, filepath.Join(dir, "client.key"), ck)
	tok := diagtest.WriteFile(t, filepath.Join(dir, "token"), []byte("s3cret-token\n"))
	// A wrong token is a secret too: a caller's mistyped token must not be
	// logged.
	wrongTok := diagtest.WriteFile(t, filepath.Join(dir, "wrong"), []byte("s3cret-but-wrong\n"))
	webConfig := diagtest.WriteFile(t, filepath.Join(dir, "web.yml"), []byte("tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n"))

	addr, metricsAddr := startServe(t, "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--client-ca-file", caFile,
		"--token-file", tok, "--metrics-address", "127.0.0.1:0", "--web-config-file", webConfig)
	if metricsAddr == "" {
		t.Fatal("no metrics address")
	}
	only := []string{"--only", "k8s.providerid-format"}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"client certificate", []string{"--server-ca-file", caFile, "--client-cert-file", clientCert, "--client-key-file", clientKey}, 2, ""},
		{"token", []string{"--server-ca-file", caFile, "--token-file", tok}, 2, ""},
		{"neither", []string{"--server-ca-file", caFile}, 69, "vnodediag: daemon " + addr + " refused the call: Unauthenticated: no bearer token: send the header \"authorization: Bearer <token>\" (give --token-file, or --client-cert-file and --client-key-file)\n"},
		{"wrong token", []string{"--server-ca-file", caFile, "--token-file", wrongTok}, 69, "vnodediag: daemon " + addr + " refused the call: Unauthenticated: invalid bearer token"},
		{"wrong CA", []string{"--server-ca-file", otherFile, "--token-file", tok}, 69, "vnodediag: daemon " + addr + " unreachable: Unavailable: "},
		{"plaintext", nil, 69, "vnodediag: daemon " + addr + " unreachable: Unavailable: "},
	} {
		_, stderr, code := runBin(t, nil, append(append([]string{"diagnose", "--server", addr}, only...), c.args...)...)
		if code != c.code || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", c.name, code, stderr, c.code, c.want)
		}
		if strings.Contains(stderr, "s3cret") {
			t.Errorf("%s: the token reached stderr: %s", c.name, stderr)
		}
	}

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's own listener
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+metricsAddr+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "s3cret") {
		t.Errorf("a secret reached the metrics:\n%s", body)
	}
	// The daemon's periodic runs (the first at start) feed the metrics.
	if !regexp.MustCompile(`(?m)^vnodediag_runs_total [1-9][0-9]*$`).Match(body) {
		t.Errorf("metrics count no periodic run:\n%s", body)
	}
	for _, want := range []string{
		`vnodediag_check_status{check="k8s.providerid-format",status="error"} 1`,
		`vnodediag_source_up{source="kube"} 0`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// Loopback needs no TLS; a plaintext daemon answers the CLI on loopback.
func TestServeLoopbackPlaintext(t *testing.T) {
	addr, _ := startServe(t)
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Fatalf("listening on %s", addr)
	}
	_, stderr, code := runBin(t, nil, "diagnose", "--server", addr, "--only", "k8s.providerid-format")
	if code != 2 {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
}

// Only addresses that bind loopback alone count as loopback: every other
// one needs TLS or --insecure-listen.
func TestLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7443":          true,
		"127.0.0.53:7443":         true,
		"[::1]:7443":              true,
		"localhost:7443":          true,
		"[::ffff:127.0.0.1]:7443": true,
		"0.0.0.0:7443":            false,
		"[::]:7443":               false,
		":7443":                   false,
		"[::ffff:10.0.0.1]:7443":  false,
		"[::ffff:0.0.0.0]:7443":   false,
		"192.0.2.1:7443":          false,
		"localhost.example:7443":  false,
		"127.0.0.1":               false,
		"":                        false,
	} {
		if got := loopbackListen(addr); got != want {
			t.Errorf("loopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}
