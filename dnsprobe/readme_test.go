package dnsprobe

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestREADMEListsEveryCheck keeps the check table of README.md and Checks()
// in sync, in both directions.
func TestREADMEListsEveryCheck(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(dns\\.[a-z0-9.-]+)` \\|").FindAllSubmatch(b, -1) {
		documented = append(documented, string(m[1]))
	}
	var ids []string
	for _, c := range Checks() {
		ids = append(ids, c.ID)
		if c.Title == "" || c.Reference == "" || len(c.Needs)+len(c.Optional) == 0 || c.Run == nil {
			t.Errorf("%s: incomplete check %+v", c.ID, c)
		}
	}
	slices.Sort(documented)
	slices.Sort(ids)
	if !slices.Equal(documented, ids) {
		t.Errorf("README.md documents %v, Checks() has %v", documented, ids)
	}
}
