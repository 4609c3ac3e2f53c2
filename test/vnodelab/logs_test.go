package vnodelab

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenTail(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "log")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := strings.Repeat("x", tailChunk+17)
	for _, tc := range []struct {
		log      string
		n, limit int
		want     string
	}{
		{"a\nb\nc\n", 1, 0, "c\n"},
		{"a\nb\nc\n", 2, 0, "b\nc\n"},
		{"a\nb\nc\n", 5, 0, "a\nb\nc\n"},
		{"a\nb\nc", 1, 0, "c"},
		{"a\nb\nc\n", 0, 0, "a\nb\nc\n"},
		{"a\nb\nc\n", 2, 3, "b\nc"},
		{"", 1, 0, ""},
		{"\n", 1, 0, "\n"},
		{"first\n" + long + "\n" + long + "\nlast\n", 2, 0, long + "\nlast\n"},
		{"first\n" + long + "\nlast\n", 3, 0, "first\n" + long + "\nlast\n"},
	} {
		rc, err := openTail(write(tc.log), tc.n, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != tc.want {
			t.Errorf("tail %d limit %d of %q:\n%q\nwant\n%q", tc.n, tc.limit, short(tc.log), short(string(b)), short(tc.want))
		}
	}
}

func short(s string) string {
	if len(s) > 60 {
		return s[:30] + "..." + s[len(s)-30:]
	}
	return s
}
