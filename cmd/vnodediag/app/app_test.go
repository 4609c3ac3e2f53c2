package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/config"
)

var idRe = regexp.MustCompile(`^[a-z0-9]+\.[a-z0-9-]+$`)

// rowRe is a row of the README's catalog: ID, sources, proves, and the link
// to the package README that documents it.
var rowRe = regexp.MustCompile("(?m)^\\| `([a-z0-9]+\\.[a-z0-9-]+)` \\|.*\\| \\[[^]]+\\]\\(([^)]+)\\) \\|$")

// TestCatalogMatchesREADME keeps the README's catalog and the registered
// checks in step, in both directions; every row links to the package README,
// and that README documents the check (each package's own test keeps its
// table and its Checks() in step).
func TestCatalogMatchesREADME(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, m := range rowRe.FindAllStringSubmatch(string(b), -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("README.md lists %s twice", m[1])
		}
		rows[m[1]] = m[2]
	}
	registered := map[string]bool{}
	for _, c := range Checks() {
		if registered[c.ID] {
			t.Errorf("check %s registered twice", c.ID)
		}
		registered[c.ID] = true
		if !idRe.MatchString(c.ID) {
			t.Errorf("check %q: want a dotted lower-case ID", c.ID)
		}
		link, ok := rows[c.ID]
		if !ok {
			t.Errorf("README.md catalog has no row for %s", c.ID)
			continue
		}
		pkg, err := os.ReadFile(filepath.Join("../../..", link))
		if err != nil {
			t.Errorf("%s: %v", c.ID, err)
		} else if !strings.Contains(string(pkg), "| `"+c.ID+"` |") {
			t.Errorf("%s has no row for %s", link, c.ID)
		}
	}
	for id := range rows {
		if !registered[id] {
			t.Errorf("README.md lists %s, which is not a registered check", id)
		}
	}
}

// TestFamilies: every family names its checks by its own prefix, and every
// section left out gives an Unconfigured source whose reason says how to
// turn it on (names its section).
func TestFamilies(t *testing.T) {
	for _, f := range Families() {
		if f.Checks != nil {
			for _, c := range f.Checks() {
				if !strings.HasPrefix(c.ID, f.Name+".") {
					t.Errorf("family %s registers %s", f.Name, c.ID)
				}
			}
		}
		if f.Section == nil {
			continue
		}
		p, err := f.Section.Provider(nil, diag.Env{})
		if err != nil {
			t.Fatalf("section %s left out: %v", f.Section.Key, err)
		}
		_, err = p.Gather(context.Background())
		if !errors.Is(err, diag.ErrNotConfigured) || !strings.Contains(err.Error(), f.Section.Key) {
			t.Errorf("section %s left out: Gather() = %v, want not configured, naming the section", f.Section.Key, err)
		}
	}
	cfg := config.New(Sections())
	r, err := NewRunner(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, res := range r.Run(context.Background(), Checks()).Results {
		if res.Status != pb.Status_SKIP {
			t.Errorf("%s with no section: %s %s", res.CheckId, res.Status, res.Summary)
		}
	}
}
