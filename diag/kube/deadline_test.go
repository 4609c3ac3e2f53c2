package kube_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/client-go/rest"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/k8s"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// Credentials the kubeconfigs of these tests carry; no output may show them.
const (
	urlUser     = "admin"
	urlPassword = "hunter2"
	token       = "vnodediag-test-token-5e1f0c"
)

// hungServer accepts connections on loopback and never answers: in "tcp"
// mode it does not even finish the TLS handshake, in "tls" mode it
// finishes it (offering HTTP/2, as an API server does) and then reads and
// discards whatever comes. stop closes it and every connection.
type hungServer struct {
	ln    net.Listener
	ca    []byte // PEM of the certificate, for the kubeconfig
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startHung(t *testing.T, mode string) *hungServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// httptest makes a certificate for 127.0.0.1; only it is kept.
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cfg := ts.TLS.Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	ts.Close()
	h := &hungServer{ln: ln, ca: ca}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			if mode == "tls" {
				h.wg.Add(1)
				go func() {
					defer h.wg.Done()
					tc := tls.Server(c, cfg)
					if tc.Handshake() != nil {
						return
					}
					buf := make([]byte, 4096)
					for {
						if _, err := tc.Read(buf); err != nil {
							return
						}
					}
				}()
			}
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *hungServer) stop() {
	_ = h.ln.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// kubeconfig writes a kubeconfig for server (host:port) with a password in
// the URL and a bearer token, as users do write them.
func kubeconfig(t *testing.T, hostPort string, ca []byte) string {
	t.Helper()
	caLine := "insecure-skip-tls-verify: true"
	if ca != nil {
		caLine = "certificate-authority-data: " + b64(ca)
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://%s:%s@%s
    %s
users:
- name: u
  user:
    token: %s
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`, urlUser, urlPassword, hostPort, caLine, token)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// assertNoSecret fails when any credential of the kubeconfig shows in text.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{urlPassword, token, urlUser + ":", urlUser + "@"} {
		if strings.Contains(text, s) {
			t.Errorf("%s contains %q:\n%s", what, s, text)
		}
	}
}

// TestHungAPIServer: an API server that accepts connections and never
// answers costs the source deadline, or the run deadline when that is
// shorter, however long requestTimeout is; the source's own requests end
// there (they are not abandoned by the runner), no credential reaches the
// report, and nothing is left running afterwards.
func TestHungAPIServer(t *testing.T) {
	for _, mode := range []string{"tcp", "tls"} {
		for _, c := range []struct {
			name          string
			sourceTimeout time.Duration
			runTimeout    time.Duration
			want          string
		}{
			{"source deadline", time.Second, time.Hour, "did not finish within 1s: kubernetes API https://127.0.0.1:"},
			{"run deadline", time.Hour, time.Second, "interrupted: run deadline exceeded: kubernetes API https://127.0.0.1:"},
		} {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				leaks := goleak.IgnoreCurrent()
				h := startHung(t, mode)
				p, err := kube.NewProvider(&kube.Config{Kubeconfig: kubeconfig(t, h.ln.Addr().String(), h.ca), RequestTimeout: diag.Duration(75 * time.Second)}, diag.Env{})
				if err != nil {
					t.Fatal(err)
				}
				r := &diag.Runner{Providers: []diag.Provider{p}, SourceTimeout: c.sourceTimeout, Identify: kube.Identify}
				ctx, cancel := context.WithTimeout(context.Background(), c.runTimeout)
				defer cancel()
				start := time.Now()
				rep := r.Run(ctx, k8s.Checks())
				took := time.Since(start)
				r.Close()
				if took > 3*time.Second {
					t.Errorf("run took %s against a hung API server with a 1s deadline", took)
				}
				st := rep.Sources[0]
				if st.State != pb.SourceStatus_FAILED || !strings.Contains(st.Message, c.want) || strings.Contains(st.Message, "ignored its deadline") {
					t.Errorf("source: %s %q, want FAILED with %q, ended by the source's own requests", st.State, st.Message, c.want)
				}
				for _, res := range rep.Results {
					if res.Status != pb.Status_ERROR {
						t.Errorf("%s: %s %q", res.CheckId, res.Status, res.Summary)
					}
				}
				b, _ := protojson.Marshal(rep)
				assertNoSecret(t, "report", string(b))
				h.stop()
				goleak.VerifyNone(t, leaks)
			})
		}
	}
}

// TestGatherEndsAtItsDeadline: Gather itself, without the runner's guard,
// returns at its context's deadline with the deadline in its error.
func TestGatherEndsAtItsDeadline(t *testing.T) {
	h := startHung(t, "tls")
	p, err := kube.ForRESTConfig(&kube.Config{RequestTimeout: diag.Duration(75 * time.Second)},
		&rest.Config{Host: "https://" + h.ln.Addr().String(), TLSClientConfig: rest.TLSClientConfig{CAData: h.ca}}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.(interface{ Close() }).Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Gather(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Gather took %s with a 500ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Gather: %v, want the deadline", err)
	}
}

// TestNoCredentialsInOutput: a kubeconfig with user:password@ in its server
// URL and a token. The API server (a real one, behind a loopback proxy that
// checks the credential it gets) works: the report names the server
// without userinfo. It is down: the errors do not show them either. And a
// kubeconfig that does not parse does not echo them.
func TestNoCredentialsInOutput(t *testing.T) {
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		t.Fatal(err)
	}
	labURL, err := url.Parse(lab.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	labTransport, err := rest.TransportFor(lab.Config)
	if err != nil {
		t.Fatal(err)
	}
	var gotAuth sync.Map
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			gotAuth.Store(r.In.Header.Get("Authorization"), true)
			r.SetURL(labURL)
			r.Out.Header.Del("Authorization") // the lab's client certificate authenticates
		},
		Transport: labTransport,
	})
	proxy.StartTLS()
	defer proxy.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw})
	run := func(t *testing.T, kc string) *pb.Report {
		p, err := kube.NewProvider(&kube.Config{Kubeconfig: kc}, diag.Env{})
		if err != nil {
			t.Fatal(err)
		}
		r := &diag.Runner{Providers: []diag.Provider{p}, Identify: kube.Identify, SourceTimeout: 20 * time.Second}
		defer r.Close()
		rep := r.Run(ctx, k8s.Checks())
		b, err := protojson.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecret(t, "report", string(b))
		return rep
	}

	t.Run("server up", func(t *testing.T) {
		addr := strings.TrimPrefix(proxy.URL, "https://")
		rep := run(t, kubeconfig(t, addr, ca))
		if st := rep.Sources[0]; st.State != pb.SourceStatus_OK {
			t.Fatalf("source: %v", st)
		}
		if got, want := rep.Cluster.GetServer(), "https://"+addr; got != want {
			t.Errorf("cluster server %q, want %q", got, want)
		}
		// The explicit token is the credential sent, not the URL's password.
		gotAuth.Range(func(k, _ any) bool {
			if k.(string) != "Bearer "+token {
				t.Errorf("the API server got Authorization %q, want the kubeconfig's token", k)
			}
			return true
		})
	})
	t.Run("server down", func(t *testing.T) {
		addr := diagtest.ClosedPort(t)
		rep := run(t, kubeconfig(t, addr, ca))
		if st := rep.Sources[0]; st.State != pb.SourceStatus_FAILED || !strings.Contains(st.Message, "https://"+addr) {
			t.Errorf("source: %v", st)
		}
	})
	t.Run("bad kubeconfig", func(t *testing.T) {
		_, err := kube.NewProvider(&kube.Config{Kubeconfig: kubeconfig(t, "127.0.0.1:notaport/x", ca)}, diag.Env{})
		if err == nil {
			t.Fatal("no error for a server URL that does not parse")
		}
		assertNoSecret(t, "error", err.Error())
	})
}

// Without a password in the URL nothing changes: the basic auth of a URL
// is still sent when the kubeconfig names no other credential.
func TestURLUserinfoStillAuthenticates(t *testing.T) {
	var mu sync.Mutex
	var got string
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("Authorization")
		mu.Unlock()
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer ts.Close()
	host := strings.Replace(ts.URL, "https://", "https://"+urlUser+":"+urlPassword+"@", 1)
	p, err := kube.ForRESTConfig(&kube.Config{}, &rest.Config{Host: host, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.(interface{ Close() }).Close()
	_, err = p.Gather(context.Background())
	if err == nil {
		t.Fatal("no error from a server that refuses")
	}
	assertNoSecret(t, "error", err.Error())
	mu.Lock()
	defer mu.Unlock()
	if want := "Basic " + b64([]byte(urlUser+":"+urlPassword)); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
}
