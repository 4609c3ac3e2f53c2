package diag

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// TrimmedCheckID is the check ID of the result that says the report was
// trimmed to fit Runner.MaxReportBytes.
const TrimmedCheckID = "report.trimmed"

// leftOutNames is how many objects of the left-out results are named.
const leftOutNames = 5

// Severity orders statuses from the least to the most severe: SKIP 1,
// PASS 2, WARN 3, ERROR 4 (not determined: it may hide a FAIL), FAIL 5;
// an unknown status 0. Capping keeps the most severe results; a check's,
// a hop's or an object's status is the most severe of its results.
func Severity(s pb.Status) int {
	switch s {
	case pb.Status_FAIL:
		return 5
	case pb.Status_ERROR:
		return 4
	case pb.Status_WARN:
		return 3
	case pb.Status_PASS:
		return 2
	case pb.Status_SKIP:
		return 1
	}
	return 0
}

var byWorst = []pb.Status{pb.Status_FAIL, pb.Status_ERROR, pb.Status_WARN, pb.Status_PASS, pb.Status_SKIP}

// capResults keeps at most limit results of one check (limit <= 0: all).
// The kept ones are the worst, in the order the check gave them; the last
// becomes a result that counts the others by status, has the worst status
// among them and names their first objects.
func capResults(out []*pb.Result, limit int) []*pb.Result {
	if limit <= 0 || len(out) <= limit {
		return out
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return Severity(out[idx[a]].Status) > Severity(out[idx[b]].Status) })
	keep, drop := idx[:limit-1], idx[limit-1:] // drop stays worst first: its first objects are named
	sort.Ints(keep)
	kept := make([]*pb.Result, 0, limit)
	for _, i := range keep {
		kept = append(kept, out[i])
	}
	return append(kept, leftOut(out, drop, limit))
}

func leftOut(out []*pb.Result, drop []int, limit int) *pb.Result {
	counts := map[pb.Status]int{}
	var objs []*pb.Object
	var names []string
	for _, i := range drop {
		r := out[i]
		counts[r.Status]++
		if len(r.Objects) > 0 && len(objs) < leftOutNames {
			o := r.Objects[0]
			objs = append(objs, o)
			names = append(names, objectName(o))
		}
	}
	worst := pb.Status_SKIP
	var parts []string
	for _, s := range byWorst {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
			if Severity(s) > Severity(worst) {
				worst = s
			}
		}
	}
	summary := fmt.Sprintf("%d more result(s) not listed (%s)", len(drop), strings.Join(parts, ", "))
	if len(names) > 0 {
		more := ""
		if len(drop) > len(names) {
			more = ", ..."
		}
		summary += " about " + strings.Join(names, ", ") + more
	}
	res := Res(worst, "%s", summary)
	res.Objects = objs
	res.Evidence = []*pb.Evidence{Ev("results of this check", fmt.Sprintf("at most %d listed", limit),
		fmt.Sprintf("%d in all; %d left out: %s", len(out), len(drop), strings.Join(parts, ", ")))}
	res.Duration = out[drop[0]].Duration
	res.CheckId, res.Reference = out[0].CheckId, out[0].Reference
	return res
}

func objectName(o *pb.Object) string {
	s := o.Kind
	if s != "" {
		s += " "
	}
	if o.Namespace != "" {
		s += o.Namespace + "/"
	}
	return s + o.Name
}

// assemble fills rep.Results from the per-check lists, capped.
func assemble(rep *pb.Report, lists [][]*pb.Result, limit int) {
	rep.Results = rep.Results[:0]
	for _, l := range lists {
		rep.Results = append(rep.Results, capResults(l, limit)...)
	}
}

// noteReserve is room kept in the budget for the note that says what was
// trimmed.
const noteReserve = 2 << 10

// fitReport assembles the report within r.MaxReportBytes. Each step gives
// up less useful detail than the next: evidence of passing results, then
// results beyond a smaller cap per check, then evidence of every result and
// long texts. The summary line of every kept result stays.
func (r *Runner) fitReport(rep *pb.Report, lists [][]*pb.Result) {
	limit := r.maxResults()
	assemble(rep, lists, limit)
	budget := r.MaxReportBytes
	switch {
	case budget < 0:
		return
	case budget == 0:
		budget = DefaultMaxReportBytes
	}
	before := proto.Size(rep)
	if before <= budget {
		return
	}
	fits := func() bool { return proto.Size(rep)+noteReserve <= budget }
	var done []string
	note := func() {
		res := Warn("report trimmed to fit its budget of %d bytes (it had %d): %s", budget, before, strings.Join(done, "; "))
		res.CheckId = TrimmedCheckID
		res.Duration = durationpb.New(0)
		res.Remediation = "Run fewer checks (--only) to see every detail, or raise the runner's report budget."
		rep.Results = append(rep.Results, res)
	}

	// Trimming writes the results: those of a memo are shared with it and
	// with other reports, so the report gets copies of its own first.
	for i, l := range lists {
		lists[i] = cloneResults(l)
	}
	trimmed := 0
	for _, l := range lists {
		for _, res := range l {
			if (res.Status == pb.Status_PASS || res.Status == pb.Status_SKIP) && (len(res.Evidence)+len(res.Objects) > 0 || res.Remediation != "") {
				res.Evidence, res.Objects, res.Remediation = nil, nil, ""
				trimmed++
			}
		}
	}
	assemble(rep, lists, limit)
	done = append(done, fmt.Sprintf("evidence, objects and remediation of %d passing or skipped result(s) removed", trimmed))
	if fits() {
		note()
		return
	}
	for _, c := range []int{100, 50, 20, 10, 5, 2} {
		if limit > 0 && c >= limit {
			continue
		}
		assemble(rep, lists, c)
		if fits() {
			done = append(done, fmt.Sprintf("at most %d results per check", c))
			note()
			return
		}
	}
	for _, max := range []int{1024, 160} {
		for _, l := range lists {
			for _, res := range l {
				shorten(res, max)
			}
		}
		for _, s := range rep.Sources {
			s.Message = cut(s.Message, max)
		}
		for _, c := range []int{2, 1} {
			assemble(rep, lists, c)
			if fits() || max == 160 && c == 1 {
				done = append(done, fmt.Sprintf("evidence removed, texts cut to %d bytes, at most %d result(s) per check", max, c))
				note()
				return
			}
		}
	}
}

// shorten drops a result's evidence, keeps at most one object and cuts its
// texts to max bytes.
func shorten(r *pb.Result, max int) {
	r.Evidence = nil
	if len(r.Objects) > 1 {
		r.Objects = r.Objects[:1]
	}
	r.Summary, r.Remediation, r.Reference = cut(r.Summary, max), cut(r.Remediation, max), cut(r.Reference, max)
	for _, o := range r.Objects {
		o.Name = cut(o.Name, max)
	}
}

// cut shortens s to at most max bytes without splitting a UTF-8
// sequence, marking the cut " [cut]".
func cut(s string, max int) string { return CutBytes(s, max, " [cut]") }

// CutBytes shortens s to at most max bytes, mark included, without
// splitting a UTF-8 sequence; s no longer than max is returned whole.
func CutBytes(s string, max int, mark string) string {
	if len(s) <= max {
		return s
	}
	i := max - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}
