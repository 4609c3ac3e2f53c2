package render

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium returns the browser the HTML report is checked in: Debian's
// chromium package (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not on PATH (Debian package chromium): the HTML report is not checked in a browser")
	return ""
}

// rgb is the computed-style form of a #rrggbb colour.
func rgb(hex string) string {
	n, err := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("rgb(%d, %d, %d)", n>>16, n>>8&0xff, n&0xff)
}

// TestHTMLInChromium opens the pages of a report with known faults, the
// demo's report and a hostile report in headless Chromium, served from a
// loopback server: each loads with no console message of level warning or
// above and fetches nothing but itself, no script element came from the
// report, and each hop of the fault report has its status's fill. The demo
// page's screenshot goes to a temporary directory, or with -update to
// docs/report.png, which the README shows.
func TestHTMLInChromium(t *testing.T) {
	exe := chromium(t)
	pages := map[string]string{
		"/fault.html":   renderHTML(t, faultReport()),
		"/demo.html":    renderHTML(t, demoReport()),
		"/hostile.html": renderHTML(t, hostile()),
	}
	var mu sync.Mutex
	var served, fetched []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served = append(served, r.URL.Path)
		mu.Unlock()
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		// Without these Chromium reaches for the network on its own (updates,
		// sync, QUIC probes); the page must be the only thing it loads.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			fetched = append(fetched, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("starting chromium %s: %v", exe, err)
	}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1200, 980)); err != nil {
		t.Fatal(err)
	}

	open := func(path string) {
		t.Helper()
		mctx, mcancel := context.WithTimeout(bctx, 30*time.Second)
		defer mcancel()
		messages := chromedp.Console(mctx)
		if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+path)); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// A marker written through DevTools ends the page's messages: all
		// that loading wrote comes before it.
		const end = "vnodediag-test: end of messages"
		if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`console.log(`+strconv.Quote(end)+`), true`)); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for m, err := range messages {
			if err != nil {
				t.Fatalf("%s: reading the console: %v", path, err)
			}
			if m.Text == end {
				break
			}
			switch m.Type {
			case chromedp.ConsoleLog, chromedp.ConsoleDebug, chromedp.ConsoleInfo:
				t.Logf("%s: console %s", path, m)
			default:
				t.Errorf("%s: console %s (%s:%d)", path, m, m.URL, m.Line)
			}
		}
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.scripts.length + document.images.length + document.querySelectorAll("iframe,object,embed").length`))
		if err != nil || n != 0 {
			t.Errorf("%s: %d script, image or embedded elements (%v)", path, n, err)
		}
	}

	open("/fault.html")
	fills, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]string](`Object.fromEntries(
		["onprem", "line", "vpc", "vnode", "path"].map(id => [id, getComputedStyle(document.getElementById("hop-" + id)).fill]))`))
	if err != nil {
		t.Fatal(err)
	}
	for hop, class := range faultColors {
		if want := rgb(HopColors[class]); fills[hop] != want {
			t.Errorf("hop %s: fill %q, want %q (%s)", hop, fills[hop], want, class)
		}
	}

	open("/hostile.html")
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil || !strings.Contains(title, "</title><script>") {
		t.Errorf("hostile page: title %q (%v), want the context as text", title, err)
	}

	open("/demo.html")
	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.png")
	if *update {
		out = filepath.Join("..", "..", "docs", "report.png")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the demo report: %s (%d bytes)", out, len(png))

	mu.Lock()
	defer mu.Unlock()
	for _, p := range served {
		if _, ok := pages[p]; !ok {
			t.Errorf("the browser asked the server for %s", p)
		}
	}
	for _, u := range fetched {
		if !strings.HasPrefix(u, srv.URL+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the browser fetched %s", u)
		}
	}
}
