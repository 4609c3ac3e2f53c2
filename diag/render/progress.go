package render

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// progressInterval is how often the live lines are redrawn: often enough
// for a seconds counter, rarely enough to cost nothing over SSH.
const progressInterval = 200 * time.Millisecond

// Progress draws the progress of a run on a terminal: one live line per
// source while it gathers ("bgp  dc-core: Active 4s/30s", "kube  3 nodes,
// 1,500/150,000 pods"), its outcome when done, and how many checks
// finished. The lines are redrawn in place with ANSI cursor movement and
// erased when the run ends, so that the report follows on a clean screen.
// Events may come from a local run (diag.WithProgress) or from a daemon's
// stream; they carry no colour and are escaped like the report.
type Progress struct {
	w     io.Writer
	width int
	now   func() time.Time

	mu      sync.Mutex
	lines   []*progressLine
	byName  map[diag.SourceName]*progressLine
	checks  int
	drawn   int // lines on the screen now
	stopped bool
}

type progressLine struct {
	name    diag.SourceName
	started time.Time
	msg     string
	done    bool
	took    time.Duration
	state   pb.SourceStatus_State
}

// NewProgress starts drawing on w, width columns wide (80 when 0 or less),
// and returns the function to hand to diag.WithProgress and the function
// that stops drawing and erases the lines. stop may be called more than
// once; fn is safe to call after it (it then does nothing).
func NewProgress(w io.Writer, width int) (fn func(diag.Progress), stop func()) {
	p := newProgress(w, width, time.Now)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.redraw()
			}
		}
	}()
	var once sync.Once
	return p.Update, func() {
		once.Do(func() {
			close(done)
			<-finished
			p.finish()
		})
	}
}

func newProgress(w io.Writer, width int, now func() time.Time) *Progress {
	if width <= 0 {
		width = 80
	}
	return &Progress{w: w, width: width, now: now, byName: map[diag.SourceName]*progressLine{}}
}

// Update records one event; the next redraw shows it.
func (p *Progress) Update(ev diag.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	if ev.Kind == diag.CheckDone {
		p.checks++
		return
	}
	l := p.byName[ev.Source]
	if l == nil {
		l = &progressLine{name: ev.Source, started: p.now()}
		p.byName[ev.Source] = l
		p.lines = append(p.lines, l)
	}
	switch ev.Kind {
	case diag.SourceStarted:
		l.started, l.done, l.msg = p.now(), false, ""
	case diag.SourceUpdate:
		if ev.Message != "" {
			l.msg = ev.Message
		} else if ev.Total > 0 {
			l.msg = fmt.Sprintf("%d/%d", ev.Done, ev.Total)
		}
	case diag.SourceDone:
		l.done = true
		l.took = p.now().Sub(l.started)
		if ev.Status != nil {
			l.state = ev.Status.State
			l.took = ev.Status.GetDuration().AsDuration()
			if ev.Status.State == pb.SourceStatus_FAILED {
				l.msg = ev.Status.Message
			}
		}
	}
}

// Lines are the lines a redraw writes now.
func (p *Progress) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.linesLocked()
}

func (p *Progress) linesLocked() []string {
	var out []string
	nameWidth := 0
	for _, l := range p.lines {
		if !l.done || l.state != pb.SourceStatus_NOT_CONFIGURED {
			nameWidth = max(nameWidth, len(l.name))
		}
	}
	now := p.now()
	for _, l := range p.lines {
		var mark, text string
		switch {
		case !l.done:
			mark = "…"
			text = l.msg
			if text == "" {
				text = "gathering"
			}
			text += "  " + now.Sub(l.started).Truncate(time.Second).String()
		case l.state == pb.SourceStatus_NOT_CONFIGURED:
			continue // its checks SKIP; the report says why
		case l.state == pb.SourceStatus_FAILED:
			mark, text = "✗", "failed: "+l.msg
		default:
			mark = "✓"
			text = "done in " + l.took.Round(time.Millisecond).String()
			if l.msg != "" {
				text = l.msg + ", " + text
			}
		}
		out = append(out, clip(fmt.Sprintf("%s %-*s  %s", mark, nameWidth, l.name, Escape(text)), p.width-1))
	}
	if p.checks > 0 {
		out = append(out, fmt.Sprintf("  %d checks done", p.checks))
	}
	return out
}

// clip cuts s to n runes, so that no line wraps: a wrapped line would
// throw the cursor movement off.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// redraw moves the cursor back over the lines drawn last time and writes
// the current ones, erasing what is left below them.
func (p *Progress) redraw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	lines := p.linesLocked()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", p.drawn)
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	b.WriteString("\x1b[J")
	p.drawn = len(lines)
	_, _ = io.WriteString(p.w, b.String())
}

// finish erases the lines and stops further drawing.
func (p *Progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn > 0 {
		_, _ = fmt.Fprintf(p.w, "\x1b[%dF\x1b[J", p.drawn)
	}
	p.drawn = 0
	p.stopped = true
}
