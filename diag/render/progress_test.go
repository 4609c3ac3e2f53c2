package render

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestProgressLines(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	p := newProgress(&out, 60, c.now)
	p.Update(diag.Progress{Kind: diag.SourceStarted, Source: "kube"})
	p.Update(diag.Progress{Kind: diag.SourceStarted, Source: "bgp"})
	p.Update(diag.Progress{Kind: diag.SourceStarted, Source: "cloud"})
	p.Update(diag.Progress{Kind: diag.SourceDone, Source: "cloud", Status: &pb.SourceStatus{State: pb.SourceStatus_NOT_CONFIGURED}})
	c.t = c.t.Add(4200 * time.Millisecond)
	p.Update(diag.Progress{Kind: diag.SourceUpdate, Source: "kube", Message: "3 nodes, 120,000/150,000 pods", Done: 120000, Total: 150000})
	p.Update(diag.Progress{Kind: diag.SourceUpdate, Source: "bgp", Message: "dc-core: Active 4s/30s\x1b[31m"})
	want := []string{
		"… kube  3 nodes, 120,000/150,000 pods  4s",
		`… bgp   dc-core: Active 4s/30s\x1b[31m  4s`, // escaped: a peer's words never drive the terminal
	}
	if got := p.Lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	p.redraw()
	p.Update(diag.Progress{Kind: diag.SourceDone, Source: "kube", Status: &pb.SourceStatus{State: pb.SourceStatus_OK, Duration: durationpb.New(4300 * time.Millisecond)}})
	p.Update(diag.Progress{Kind: diag.SourceDone, Source: "bgp", Status: &pb.SourceStatus{State: pb.SourceStatus_FAILED, Message: "listen 0.0.0.0:179: permission denied " + strings.Repeat("x", 80)}})
	p.Update(diag.Progress{Kind: diag.CheckDone, Check: "k8s.podcidr-assigned"})
	got := p.Lines()
	if got[0] != "✓ kube  3 nodes, 120,000/150,000 pods, done in 4.3s" || !strings.HasPrefix(got[1], "✗ bgp   failed: listen 0.0.0.0:179") ||
		len([]rune(got[1])) != 59 || got[2] != "  1 checks done" {
		t.Errorf("lines after done:\n%s", strings.Join(got, "\n"))
	}
	p.redraw()
	p.finish()
	s := out.String()
	// First draw: two lines; the second moves up over them; finish erases the three.
	if !strings.HasPrefix(s, "\x1b[2K… kube") || !strings.Contains(s, "\x1b[J\x1b[2F\x1b[2K✓ kube") || !strings.HasSuffix(s, "\x1b[3F\x1b[J") {
		t.Errorf("terminal output %q", s)
	}
	n := out.Len()
	p.Update(diag.Progress{Kind: diag.SourceStarted, Source: "dns"})
	p.redraw()
	if out.Len() != n {
		t.Error("drew after finish")
	}
}

// NewProgress is safe for events from many goroutines, and stop may be
// called twice.
func TestNewProgressConcurrent(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	fn, stop := NewProgress(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(b)
	}), 80)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fn(diag.Progress{Kind: diag.SourceUpdate, Source: diag.SourceName([]string{"kube", "bgp"}[i%2]), Message: strings.Repeat("x", j%7)})
			}
		}()
	}
	wg.Wait()
	stop()
	stop()
	fn(diag.Progress{Kind: diag.CheckDone})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
