package metrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vnodediag/vnodediag/diag/diagtest"
)

// serveEndpoint serves m on a loopback port with the web config file
// (empty: none) until the test ends and returns the port's address.
func serveEndpoint(t *testing.T, m *Metrics, webConfig string) string {
	t.Helper()
	e, err := Listen("127.0.0.1:0", webConfig, m.Handler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return e.Addr().String()
}

// get fetches url with client, basic auth user:pass when user is not
// empty, and returns the status code and body (code 0: the request
// failed, body is the error).
func get(t *testing.T, client *http.Client, url, user, pass string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b)
}

// Without a web config the endpoint is plain HTTP and serves the Go,
// process and vnodediag series.
func TestEndpointPlain(t *testing.T) {
	m := New()
	addr := serveEndpoint(t, m, "")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	code, body := get(t, client, "http://"+addr+"/metrics", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for _, want := range []string{"go_goroutines ", "process_resident_memory_bytes ", "vnodediag_build_info{", "vnodediag_runs_total 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in /metrics", want)
		}
	}
	if code, _ := get(t, client, "http://"+addr+"/nope", "", ""); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", code)
	}
}

// The exporter-toolkit web config: TLS (a client that does not trust the
// CA or speaks plain HTTP is refused) and basic auth (no or wrong
// credentials: 401); the right ones get the metrics; the file is read
// again on every request.
func TestEndpointWebConfig(t *testing.T) {
	dir := t.TempDir()
	ca, other := diagtest.NewCA(t, "ca"), diagtest.NewCA(t, "other")
	cert, key := ca.Valid(t, false)
	certFile := diagtest.WriteFile(t, filepath.Join(dir, "tls.crt"), cert)
	keyFile := diagtest.WriteFile(t, filepath.Join(dir, "tls.key"), key)
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := diagtest.WriteFile(t, filepath.Join(dir, "web.yml"), fmt.Appendf(nil,
		"tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n", certFile, keyFile, hash))

	m := New()
	addr := serveEndpoint(t, m, webConfig)
	trusting := func(caPEM []byte) *http.Client {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	good, bad := trusting(ca.PEM), trusting(other.PEM)
	defer good.CloseIdleConnections()
	defer bad.CloseIdleConnections()
	url := "https://" + addr + "/metrics"

	if code, body := get(t, good, url, "prometheus", "scrape-pass"); code != http.StatusOK || !strings.Contains(body, "vnodediag_build_info{") {
		t.Errorf("right CA and password: %d %.200s", code, body)
	}
	if code, _ := get(t, good, url, "", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if code, _ := get(t, good, url, "prometheus", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code, body := get(t, bad, url, "prometheus", "scrape-pass"); code != 0 || !strings.Contains(body, "certificate signed by unknown authority") {
		t.Errorf("client trusting another CA: %d %s", code, body)
	}
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	if code, body := get(t, plain, "http://"+addr+"/metrics", "prometheus", "scrape-pass"); code != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS endpoint: %d %.200s", code, body)
	}

	// The file is read again on every request: a new password applies to
	// the next scrape, without a restart, and the old one no longer does.
	hash2, err := bcrypt.GenerateFromPassword([]byte("scrape-pass-2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	diagtest.WriteFile(t, webConfig, fmt.Appendf(nil,
		"tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n", certFile, keyFile, hash2))
	if code, _ := get(t, good, url, "prometheus", "scrape-pass-2"); code != http.StatusOK {
		t.Errorf("the new password after the file changed: %d, want 200", code)
	}
	if code, _ := get(t, good, url, "prometheus", "scrape-pass"); code != http.StatusUnauthorized {
		t.Errorf("the old password after the file changed: %d, want 401", code)
	}
}

// A web config that does not load is refused before anything listens,
// naming the file.
func TestEndpointBadWebConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "web.yml")
	if _, err := Listen("127.0.0.1:0", missing, New().Handler(), nil); err == nil || !strings.HasPrefix(err.Error(), "web config "+missing+": ") {
		t.Errorf("missing web config: %v", err)
	}
	bad := diagtest.WriteFile(t, filepath.Join(dir, "bad.yml"), []byte("tls_server_config:\n  cert_file: /nonexistent.crt\n"))
	if _, err := Listen("127.0.0.1:0", bad, New().Handler(), nil); err == nil || !strings.HasPrefix(err.Error(), "web config "+bad+": ") {
		t.Errorf("web config with a cert and no key: %v", err)
	}
	unknown := diagtest.WriteFile(t, filepath.Join(dir, "unknown.yml"), []byte("tls_sever_config: {}\n"))
	if _, err := Listen("127.0.0.1:0", unknown, New().Handler(), nil); err == nil {
		t.Error("web config with an unknown field loaded")
	}
	// A file that is not a web config (a token given by mistake): the
	// error does not quote it.
	secret := diagtest.WriteFile(t, filepath.Join(dir, "token"), []byte("s3cret-value\n"))
	if _, err := Listen("127.0.0.1:0", secret, New().Handler(), nil); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("web config that is a token: %v", err)
	}
}
