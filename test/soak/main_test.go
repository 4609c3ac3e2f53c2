package main

import "testing"

// grew passes a steady daemon (RSS and goroutines moving a little) and
// fails one that leaks memory or goroutines.
func TestGrew(t *testing.T) {
	for _, c := range []struct {
		name       string
		rss0, rss1 int64
		g0, g1     int64
		wantErr    bool
	}{
		{"flat", 61_000, 60_500, 56, 56, false},
		{"a collection's swing and calls in flight", 60_000, 70_000, 56, 80, false},
		{"memory leak", 60_000, 90_000, 56, 56, true},
		{"goroutine leak", 60_000, 60_000, 56, 400, true},
	} {
		if err := grew(c.rss0, c.rss1, c.g0, c.g1); (err != nil) != c.wantErr {
			t.Errorf("%s: grew = %v, want an error %v", c.name, err, c.wantErr)
		}
	}
}
