package vnode

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestREADME keeps the README's check table and Checks() in step: the same
// IDs, each row with all four columns filled.
func TestREADME(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(vnode\\.[a-z0-9-]+)` \\|")
	var ids []string
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ids = append(ids, m[1])
		cols := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cols) != 4 {
			t.Errorf("README row for %s has %d columns, want ID, proves, failure, fix", m[1], len(cols))
		}
		for i, c := range cols {
			if strings.TrimSpace(c) == "" {
				t.Errorf("README row for %s: column %d is empty", m[1], i+1)
			}
		}
	}
	var want []string
	for _, c := range Checks() {
		want = append(want, c.ID)
		if c.Title == "" || c.Reference == "" || len(c.Needs) == 0 || c.Run == nil {
			t.Errorf("check %s is incomplete: %+v", c.ID, c)
		}
	}
	sort.Strings(ids)
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("README checks %v, Checks() %v", ids, want)
	}
}
