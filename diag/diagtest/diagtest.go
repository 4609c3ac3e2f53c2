// Package diagtest holds the test helpers every check family shares:
// compact views of results, the search for an expected result, a provider's
// gather as its key's type, and the test that keeps a package README's check
// table and the package's Checks() in step.
package diagtest

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Statuses returns "STATUS summary" lines, for compact assertions and
// failure messages.
func Statuses(rs []*pb.Result) []string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.Status.String() + " " + r.Summary
	}
	return s
}

// StatusNames is the results' statuses, comma-separated: "PASS,FAIL".
func StatusNames(rs []*pb.Result) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.Status.String()
	}
	return strings.Join(s, ",")
}

// Dump is the results with their evidence and fix, for failure messages.
func Dump(rs []*pb.Result) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Status.String() + " " + r.Summary + "\n")
		for _, e := range r.Evidence {
			b.WriteString("  " + e.Label + ": want " + e.Expected + " got " + e.Observed + "\n")
		}
		if r.Remediation != "" {
			b.WriteString("  fix: " + r.Remediation + "\n")
		}
	}
	return b.String()
}

// Want is one expected result: its status and fragments of its text (the
// summary, evidence and fix, as Dump writes them).
type Want struct {
	Status   pb.Status
	Contains []string
}

// W is the Want of a result with status whose text contains every fragment.
func W(status pb.Status, contains ...string) Want { return Want{Status: status, Contains: contains} }

// Expect checks that rs are one result per want, in order, each with the
// want's status and text. A different count fails the test at once.
func Expect(t testing.TB, rs []*pb.Result, wants ...Want) {
	t.Helper()
	if len(rs) != len(wants) {
		t.Fatalf("%d results, want %d:\n%s", len(rs), len(wants), Dump(rs))
	}
	for i, w := range wants {
		text := Dump(rs[i : i+1])
		if rs[i].Status != w.Status {
			t.Errorf("result %d is %s, want %s:\n%s", i, rs[i].Status, w.Status, text)
		}
		for _, f := range w.Contains {
			if !strings.Contains(text, f) {
				t.Errorf("result %d lacks %q:\n%s", i, f, text)
			}
		}
	}
}

// ExpectOne returns the first result with status whose summary contains
// substr, and fails the test when there is none.
func ExpectOne(t testing.TB, rs []*pb.Result, status pb.Status, substr string) *pb.Result {
	t.Helper()
	for _, r := range rs {
		if r.Status == status && strings.Contains(r.Summary, substr) {
			return r
		}
	}
	t.Errorf("no %s result containing %q in:\n  %s", status, substr, strings.Join(Statuses(rs), "\n  "))
	return nil
}

// At returns result i and fails the test at once when there is no such
// result or its status is not want.
func At(t testing.TB, rs []*pb.Result, i int, want pb.Status) *pb.Result {
	t.Helper()
	if len(rs) <= i {
		t.Fatalf("got %d results, want result %d:\n%s", len(rs), i, Dump(rs))
	}
	if rs[i].Status != want {
		t.Fatalf("result %d: status %s, want %s:\n%s", i, rs[i].Status, want, Dump(rs[i:i+1]))
	}
	return rs[i]
}

// Find returns the first result about the object kind namespace/name, nil
// when there is none.
func Find(rs []*pb.Result, kind, namespace, name string) *pb.Result {
	for _, r := range rs {
		for _, o := range r.Objects {
			if o.Kind == kind && o.Namespace == namespace && o.Name == name {
				return r
			}
		}
	}
	return nil
}

// GatherAs gathers p once and returns its value as key's type; an error,
// or a value of another type, fails the test.
func GatherAs[T any](t testing.TB, ctx context.Context, p diag.Provider, key diag.Key[T]) T {
	t.Helper()
	if p.Name() != key.Name() {
		t.Fatalf("provider %s is not the %s source", p.Name(), key.Name())
	}
	v, err := p.Gather(ctx)
	if err != nil {
		t.Fatalf("gather %s: %v", p.Name(), err)
	}
	out, ok := v.(T)
	if !ok {
		t.Fatalf("gather %s: got %T, want %T", p.Name(), v, out)
	}
	return out
}

// Run runs the check id of checks on in, as the runner would after
// gathering; an unknown id fails the test.
func Run(t testing.TB, ctx context.Context, checks []diag.Check, id string, in *diag.Inputs) []*pb.Result {
	t.Helper()
	for _, c := range checks {
		if c.ID == id {
			return c.Run(ctx, in.ReadBy(c)) // the parts it names alone, as in a run
		}
	}
	t.Fatalf("no check %s", id)
	return nil
}

var rowRe = regexp.MustCompile("^\\| `([a-z0-9]+\\.[a-z0-9-]+)` \\|")

// CheckREADME keeps the check table of the package README at path and
// checks in step, in both directions: every check has a row and every row
// is a check, each row has its four columns (ID, what it proves, what a
// failure means, the fix) filled, and each check is complete (title,
// reference, sources, Run).
func CheckREADME(t testing.TB, path string, checks []diag.Check) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, line := range strings.Split(string(b), "\n") {
		m := rowRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		documented = append(documented, m[1])
		cols := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), " | ")
		if len(cols) != 4 {
			t.Errorf("%s: the row of %s has %d columns, want ID, proves, failure, fix", path, m[1], len(cols))
			continue
		}
		for i, c := range cols {
			if strings.TrimSpace(c) == "" {
				t.Errorf("%s: the row of %s has column %d empty", path, m[1], i+1)
			}
		}
	}
	var ids []string
	for _, c := range checks {
		ids = append(ids, c.ID)
		if c.Title == "" || c.Reference == "" || len(c.Needs)+len(c.Optional) == 0 || c.Run == nil {
			t.Errorf("check %s is incomplete: want a title, a reference, its sources and Run", c.ID)
		}
	}
	slices.Sort(documented)
	slices.Sort(ids)
	if !slices.Equal(documented, ids) {
		t.Errorf("%s documents %v, Checks() has %v", path, documented, ids)
	}
}
