package kube_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/rest"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// gatedTransport sits between client-go and the API server's connection.
// hold freezes the watch streams open at that moment: what the server
// sends on them from then on never reaches their reflectors, while new
// requests, new watches included, go through (those of slowPath after
// delay).
// fail makes every request fail with a transport error and ends the open
// watches.
type gatedTransport struct {
	rt http.RoundTripper

	mu       sync.Mutex
	failing  error
	slowPath string
	delay    time.Duration
	watches  map[*gatedBody]bool
}

// gated is the lab's client configuration with its transport behind a
// new gatedTransport.
func gated(lab *kubelab.Lab) (*gatedTransport, *rest.Config) {
	gt := &gatedTransport{watches: map[*gatedBody]bool{}}
	rc := rest.CopyConfig(lab.Config)
	rc.WrapTransport = gt.wrap
	return gt, rc
}

// wrap is for rest.Config.WrapTransport.
func (g *gatedTransport) wrap(rt http.RoundTripper) http.RoundTripper {
	g.rt = rt
	return g
}

// WrappedRoundTripper lets client-go close the idle connections below.
func (g *gatedTransport) WrappedRoundTripper() http.RoundTripper { return g.rt }

func (g *gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	err, delay := g.failing, g.delay
	slow := req.URL.Path == g.slowPath
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if slow {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	resp, err := g.rt.RoundTrip(req)
	if err != nil || (req.URL.Query().Get("watch") != "true" && req.URL.Query().Get("watch") != "1") {
		return resp, err
	}
	b := &gatedBody{ReadCloser: resp.Body, ctx: req.Context(), closed: make(chan struct{}), g: g}
	g.mu.Lock()
	g.watches[b] = true
	g.mu.Unlock()
	resp.Body = b
	return resp, nil
}

// hold freezes the watches open now and returns how many; release ends
// the freeze.
func (g *gatedTransport) hold() (n int, release func()) {
	gate := make(chan struct{})
	g.mu.Lock()
	defer g.mu.Unlock()
	for b := range g.watches {
		b.mu.Lock()
		b.gate = gate
		b.mu.Unlock()
	}
	return len(g.watches), sync.OnceFunc(func() { close(gate) })
}

// slow delays the requests of path from now on by d.
func (g *gatedTransport) slow(path string, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.slowPath, g.delay = path, d
}

// fail makes every request from now on fail with err (nil: succeed again)
// and ends the watches open now.
func (g *gatedTransport) fail(err error) {
	g.mu.Lock()
	g.failing = err
	var open []*gatedBody
	if err != nil {
		for b := range g.watches {
			open = append(open, b)
		}
	}
	g.mu.Unlock()
	for _, b := range open {
		b.Close()
	}
}

// gatedBody is a watch's response body; while gated, what it reads is
// held back until the gate opens (or the watch ends, then it is dropped).
type gatedBody struct {
	io.ReadCloser
	ctx       context.Context
	g         *gatedTransport
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	gate chan struct{}
}

func (b *gatedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.mu.Lock()
	gate := b.gate
	b.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-b.closed:
			return 0, io.ErrUnexpectedEOF
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
	return n, err
}

func (b *gatedBody) Close() error {
	b.closeOnce.Do(func() {
		close(b.closed)
		b.g.mu.Lock()
		delete(b.g.watches, b)
		b.g.mu.Unlock()
	})
	return b.ReadCloser.Close()
}

// nodeNames are the names of the nodes the cache holds now.
func nodeNames(t *testing.T, ctx context.Context, c *kube.CachedProvider) []string {
	t.Helper()
	v, err := c.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range v.(*kube.Snapshot).Nodes {
		out = append(out, n.Name)
	}
	return out
}

// Refresh regathers from the API server, and returns only once it has:
// with every watch frozen, so that no change can reach the cache through
// them, a node created meanwhile is in the cache as soon as Refresh
// returns, although a request for the nodes now takes 2 s to be answered. A
// Refresh that did nothing would leave the cache without it (the first
// check below shows the watches alone do not bring it), and one that did
// not wait for its relists would return before they end.
func TestCachedProviderRefreshRelists(t *testing.T) {
	lab, ctx := hybridLab(t)
	leaks := goleak.IgnoreCurrent()
	gt, rc := gated(lab)
	c := syncedCache(t, ctx, &kube.Config{}, rc, nil)

	n, release := gt.hold()
	defer release()
	if n < 7 {
		t.Fatalf("%d watches open, want one per watched list (7)", n)
	}
	name := fmt.Sprintf("refresh-%d", time.Now().UnixNano())
	if err := lab.Apply(ctx, kubelab.ECSNode(name, "i-"+name, "172.30.0.0/24", "192.168.30.1")); err != nil {
		t.Fatal(err)
	}
	// The watch of nodes would have delivered it in milliseconds.
	time.Sleep(2 * time.Second)
	if names := nodeNames(t, ctx, c); slices.Contains(names, name) {
		t.Fatalf("node %s reached the cache through a frozen watch: the test cannot tell a relist from the watch", name)
	}

	gt.slow("/api/v1/nodes", 2*time.Second)
	start := time.Now()
	if err := c.Refresh(ctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("Refresh returned after %s, before the nodes could be relisted", d)
	}
	if names := nodeNames(t, ctx, c); !slices.Contains(names, name) {
		t.Errorf("after Refresh the cache has nodes %v, without %s created before it", names, name)
	}
	if err := c.Health(); err != nil {
		t.Errorf("healthy after Refresh: %v", err)
	}
	release()
	c.Close()
	goleak.VerifyNone(t, leaks)
}

// When the watches lose the API server the cache logs why, per resource
// ("kubernetes watch failing" with the request's error), and logs
// "kubernetes watch recovered" once they are back; the password of a URL
// in the error (a proxy's, here) is not in the cache's log.
func TestCachedProviderLogsWatchFailure(t *testing.T) {
	lab, ctx := hybridLab(t)
	leaks := goleak.IgnoreCurrent()
	gt, rc := gated(lab)
	var logs diagtest.SyncBuffer
	c := syncedCache(t, ctx, &kube.Config{}, rc, slog.New(slog.NewJSONHandler(&logs, nil)))
	if recs := diagtest.LogRecords(t, &logs, "kubernetes watch failing"); len(recs) != 0 {
		t.Fatalf("failing before any failure: %v", recs)
	}

	secret := fmt.Sprintf("pw-%d", time.Now().UnixNano())
	gt.fail(fmt.Errorf("proxyconnect tcp: https://proxy-user:%s@proxy.invalid:3128: dial tcp 192.0.2.1:3128: connect: connection refused", secret))
	var nodes map[string]any
	eventually(t, 60*time.Second, "a failing watch of nodes logged", func() string {
		for _, rec := range diagtest.LogRecords(t, &logs, "kubernetes watch failing") {
			if rec["resource"] == "nodes" {
				nodes = rec
				return ""
			}
		}
		return "no failing line for nodes"
	})
	if e, _ := nodes["err"].(string); !strings.Contains(e, "proxyconnect tcp: https://proxy.invalid:3128: dial tcp 192.0.2.1:3128: connect: connection refused") {
		t.Errorf("the failing line's err %q does not say why", e)
	}
	if err := c.Health(); err == nil {
		t.Error("healthy while every request fails")
	}

	gt.fail(nil)
	eventually(t, 90*time.Second, "the watch of nodes recovered and logged", func() string {
		for _, rec := range diagtest.LogRecords(t, &logs, "kubernetes watch recovered") {
			if rec["resource"] == "nodes" {
				if c.Health() != nil {
					return "logged recovered, but unhealthy: " + c.Health().Error()
				}
				return ""
			}
		}
		return "no recovered line for nodes"
	})
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the proxy's password is in the log:\n%s", logs.String())
	}
	c.Close()
	goleak.VerifyNone(t, leaks)
}
