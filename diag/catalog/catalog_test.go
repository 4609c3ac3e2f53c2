package catalog

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// packageREADME is where each ID prefix's checks are documented.
var packageREADME = map[string]string{
	"k8s":   "../k8s/README.md",
	"vnode": "../vnode/README.md",
	"bgp":   "../../bgp/README.md",
	"route": "../../bgp/README.md",
	"dns":   "../../dnsprobe/README.md",
}

var idRe = regexp.MustCompile(`^[a-z0-9]+\.[a-z0-9-]+$`)

// tableIDs returns the IDs in the first column of a markdown table.
func tableIDs(doc string) []string {
	var ids []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9]+\\.[a-z0-9-]+)` \\|").FindAllStringSubmatch(doc, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestCatalogMatchesREADMEs(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	registered := map[string]bool{}
	for _, c := range All() {
		if registered[c.ID] {
			t.Errorf("check %s registered twice", c.ID)
		}
		registered[c.ID] = true
		if !idRe.MatchString(c.ID) || c.Title == "" || c.Run == nil || len(c.Needs) == 0 {
			t.Errorf("check %q: want a dotted lower-case ID, a title, a Run and its sources", c.ID)
		}
		if !strings.Contains(readme, "| `"+c.ID+"` |") {
			t.Errorf("README.md catalog has no row for %s", c.ID)
		}
		prefix, _, _ := strings.Cut(c.ID, ".")
		path, ok := packageREADME[prefix]
		if !ok {
			t.Errorf("check %s: no package README known for prefix %q", c.ID, prefix)
			continue
		}
		pb, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("check %s: %v", c.ID, err)
			continue
		}
		if !strings.Contains(string(pb), "| `"+c.ID+"` |") {
			t.Errorf("%s has no row for %s", path, c.ID)
		}
	}
	for _, id := range tableIDs(readme) {
		if !registered[id] {
			t.Errorf("README.md lists %s, which is not a registered check", id)
		}
	}
}
