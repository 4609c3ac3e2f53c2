package diag

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func many(n int, status pb.Status, prefix string) []*pb.Result {
	out := make([]*pb.Result, n)
	for i := range out {
		out[i] = Res(status, "%s %d", prefix, i)
		out[i].Objects = []*pb.Object{Obj("Node", "", fmt.Sprintf("%s-%04d", prefix, i))}
	}
	return out
}

// TestResultsPerCheckCapped: past the cap the worst results are kept in the
// check's order, and one result counts the rest; no FAIL is dropped while a
// PASS is kept.
func TestResultsPerCheckCapped(t *testing.T) {
	var given []*pb.Result
	given = append(given, many(1000, pb.Status_PASS, "pass")...)
	given = append(given, many(300, pb.Status_FAIL, "fail")...)
	given = append(given, many(5, pb.Status_ERROR, "error")...)
	run := func(r *Runner) []*pb.Result {
		return r.Run(context.Background(), []Check{check("k8s.many", nil, func(context.Context, *Inputs) []*pb.Result { return given })}).Results
	}

	got := run(&Runner{})
	if len(got) != DefaultMaxResultsPerCheck {
		t.Fatalf("%d results, want the default cap %d", len(got), DefaultMaxResultsPerCheck)
	}
	for i, r := range got[:len(got)-1] {
		if r.Status != pb.Status_FAIL && r.Status != pb.Status_ERROR {
			t.Fatalf("result %d is %s while FAILs were left out", i, r.Status)
		}
		if i > 0 && r.Status == pb.Status_FAIL && got[i-1].Status == pb.Status_FAIL && r.Objects[0].Name < got[i-1].Objects[0].Name {
			t.Fatalf("kept results out of the check's order: %s after %s", r.Objects[0].Name, got[i-1].Objects[0].Name)
		}
	}
	last := got[len(got)-1]
	want := "1106 more result(s) not listed (101 FAIL, 5 ERROR, 1000 PASS) about Node fail-0199, Node fail-0200"
	if last.Status != pb.Status_FAIL || !strings.HasPrefix(last.Summary, want) || last.CheckId != "k8s.many" || len(last.Objects) != leftOutNames {
		t.Errorf("left-out result: %s %q objects %d, want FAIL starting %q", last.Status, last.Summary, len(last.Objects), want)
	}

	if got := run(&Runner{MaxResultsPerCheck: 10}); len(got) != 10 || !strings.HasPrefix(got[9].Summary, "1296 more") {
		t.Errorf("cap 10: %d results, last %q", len(got), got[len(got)-1].Summary)
	}
	if got := run(&Runner{MaxResultsPerCheck: -1, MaxReportBytes: -1}); len(got) != len(given) {
		t.Errorf("no cap: %d results, want %d", len(got), len(given))
	}
}

// TestReportBudget: a report far over its budget comes back within it;
// passing results lose their evidence first, failures keep theirs as long
// as that is enough, and a result says what was trimmed.
func TestReportBudget(t *testing.T) {
	big := strings.Repeat("x", 4096)
	mk := func(id string, status pb.Status, n int) Check {
		return check(id, nil, func(context.Context, *Inputs) []*pb.Result {
			out := many(n, status, id)
			for _, r := range out {
				r.Evidence = []*pb.Evidence{Ev("detail", "small", big)}
				r.Remediation = big
			}
			return out
		})
	}
	var checks []Check
	for i := 0; i < 20; i++ {
		checks = append(checks, mk(fmt.Sprintf("pass.c%02d", i), pb.Status_PASS, 200))
	}
	checks = append(checks, mk("fail.one", pb.Status_FAIL, 20))

	t.Run("passing evidence is enough", func(t *testing.T) {
		rep := (&Runner{}).Run(context.Background(), checks)
		if size := proto.Size(rep); size > DefaultMaxReportBytes {
			t.Fatalf("report is %d bytes, budget %d", size, DefaultMaxReportBytes)
		}
		note := findNote(t, rep)
		if !strings.Contains(note.Summary, "evidence, objects and remediation of 4000 passing or skipped result(s) removed") || note.Status != pb.Status_WARN {
			t.Errorf("note: %s %q", note.Status, note.Summary)
		}
		for _, r := range rep.Results {
			if r.CheckId == "fail.one" && (len(r.Evidence) != 1 || r.Remediation != big) {
				t.Fatalf("a failure lost its evidence although trimming passes was enough")
			}
		}
		if s := rep.Summary; s.Pass != 4000 || s.Fail != 20 || s.Warn != 1 {
			t.Errorf("summary %v", s)
		}
	})
	t.Run("small budget", func(t *testing.T) {
		const budget = 64 << 10
		rep := (&Runner{MaxReportBytes: budget}).Run(context.Background(), checks)
		if size := proto.Size(rep); size > budget {
			t.Fatalf("report is %d bytes, budget %d", size, budget)
		}
		findNote(t, rep)
		fails := 0
		for _, r := range rep.Results {
			if r.CheckId == "fail.one" && r.Status == pb.Status_FAIL {
				fails++
			}
		}
		if fails == 0 {
			t.Error("every failure was dropped")
		}
	})
	t.Run("one huge result", func(t *testing.T) {
		const budget = 256 << 10
		huge := check("a.huge", nil, func(context.Context, *Inputs) []*pb.Result {
			return []*pb.Result{Fail("%s", strings.Repeat("é", 1<<20))}
		})
		rep := (&Runner{MaxReportBytes: budget}).Run(context.Background(), []Check{huge})
		if size := proto.Size(rep); size > budget {
			t.Fatalf("report is %d bytes, budget %d", size, budget)
		}
		if r := rep.Results[0]; r.Status != pb.Status_FAIL || !strings.HasSuffix(r.Summary, "é [cut]") {
			t.Errorf("huge summary not cut on a rune boundary: %q", r.Summary[len(r.Summary)-20:])
		}
	})
}

func findNote(t *testing.T, rep *pb.Report) *pb.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.CheckId == TrimmedCheckID {
			return r
		}
	}
	t.Fatal("no result says the report was trimmed")
	return nil
}
