package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestTuneGC: without GOGC, serve collects at daemonGOGC and diagnose at
// oneShotGOGC; a GOGC the operator sets is left alone.
func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, c := range []struct {
		daemon bool
		want   int
	}{{true, daemonGOGC}, {false, oneShotGOGC}} {
		debug.SetGCPercent(100)
		tuneGC(c.daemon)
		if got := debug.SetGCPercent(100); got != c.want {
			t.Errorf("daemon=%v: GOGC %d, want %d", c.daemon, got, c.want)
		}
	}
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80)
	tuneGC(true)
	if got := debug.SetGCPercent(100); got != 80 {
		t.Errorf("with GOGC=80 set: %d", got)
	}
}
