package diag

import (
	"context"
	"testing"
)

func TestPoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := NewPoll(ctx)
	for i := 0; i < 5000; i++ {
		if p.Stop() {
			t.Fatalf("stopped at %d before the context ended", i)
		}
	}
	cancel()
	n := 0
	for !p.Stop() {
		n++
		if n > PollEvery {
			t.Fatalf("still running %d iterations after the context ended", n)
		}
	}
	if !p.Stop() {
		t.Error("Stop is not sticky")
	}
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if !NewPoll(done).Stop() {
		t.Error("a loop over an ended context runs its first iteration")
	}
	if r := Stopped(done)[0]; r.Summary != "stopped: canceled before the check had judged everything" {
		t.Errorf("Stopped: %q", r.Summary)
	}
}
