package diag

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Version is the vnodediag version set at link time (make build, the
// release builds); BuildVersion falls back to what Go recorded.
var Version string

// BuildVersion is the version to show: the link-time Version, else the
// module version Go recorded in the binary (go install ...@v1.2.3), else
// the VCS revision of a source build, else "dev".
func BuildVersion() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) >= 12 {
		return "dev-" + rev[:12] + dirty
	}
	return "dev"
}

// Catalog is the ListChecksResponse of checks, for `vnodediag checks` and
// the daemon's ListChecks alike.
func Catalog(checks []Check) *pb.ListChecksResponse {
	resp := &pb.ListChecksResponse{Checks: make([]*pb.CheckInfo, len(checks))}
	for i, c := range checks {
		resp.Checks[i] = c.Info()
	}
	return resp
}

// Check is one diagnostic with a stable dotted ID. Run must be read-only,
// must not print, and must obey ctx; it gets the run's gathered sources and
// returns one or more results. The runner fills CheckId and Duration.
type Check struct {
	ID    string
	Title string
	// Needs are the sources Run reads; it runs only when all were gathered
	// (diag.Needs(kube.Source, bgp.Source)).
	Needs []SourceName
	// Optional sources are gathered when the run has them and read when
	// present (Key.Gathered tells). A check without Needs runs when at
	// least one of them was gathered, else it takes their SKIP or ERROR.
	Optional []SourceName
	// Reads names the parts of its sources' Parted values the check reads
	// (kube.PartNodes, kube.PartPods, ...). When set, Run is given each
	// Parted value with those parts alone (the others empty), so that a
	// part read but not named cannot go unnoticed, and a memo reruns the
	// check only when one of them changed. Empty: every value whole.
	Reads     []string
	Reference string
	Run       func(ctx context.Context, in *Inputs) []*pb.Result
}

// Info is the catalog entry for c.
func (c Check) Info() *pb.CheckInfo {
	src := make([]string, 0, len(c.Needs)+len(c.Optional))
	for _, n := range slices.Concat(c.Needs, c.Optional) {
		src = append(src, string(n))
	}
	return &pb.CheckInfo{Id: c.ID, Title: c.Title, Sources: src, Reference: c.Reference}
}

// Obj names an object a result is about.
func Obj(kind, namespace, name string) *pb.Object {
	return &pb.Object{Kind: kind, Namespace: namespace, Name: name}
}

// Ev is one piece of evidence.
func Ev(label, expected, observed string) *pb.Evidence {
	return &pb.Evidence{Label: label, Expected: expected, Observed: observed}
}

// Res builds a result; objects and evidence are added by the caller.
func Res(status pb.Status, format string, args ...any) *pb.Result {
	return &pb.Result{Status: status, Summary: fmt.Sprintf(format, args...)}
}

// Pass, Warn, Fail, Errorf and Skip are shorthands for Res.
func Pass(format string, args ...any) *pb.Result { return Res(pb.Status_PASS, format, args...) }
func Warn(format string, args ...any) *pb.Result { return Res(pb.Status_WARN, format, args...) }
func Fail(format string, args ...any) *pb.Result { return Res(pb.Status_FAIL, format, args...) }
func Skip(format string, args ...any) *pb.Result { return Res(pb.Status_SKIP, format, args...) }
func Errorf(format string, args ...any) *pb.Result {
	return Res(pb.Status_ERROR, format, args...)
}

// Select returns the checks whose ID matches an entry of only (all when only
// is empty) and none of skip. An entry matches an ID exactly or as a dotted
// prefix ("bgp" or "bgp." matches "bgp.session"). Entries that match no check
// are an error that names them (the first few) and the valid IDs, so a typo
// never silently runs everything or skips nothing; a selection that leaves
// no check is an error too, so a run never checks nothing and passes.
func Select(all []Check, only, skip []string) ([]Check, error) {
	var unknown []string
	seen := map[string]bool{}
	for _, list := range [][]string{only, skip} {
		for _, e := range list {
			if !seen[e] && !matchesAny(all, e) {
				unknown = append(unknown, e)
			}
			seen[e] = true
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown check ID or prefix %s%s; %s",
			quoteCapped(unknown), suggest(all, unknown), validIDs(all))
	}
	var out []Check
	for _, c := range all {
		if len(only) > 0 && !matchAny(c.ID, only) {
			continue
		}
		if matchAny(c.ID, skip) {
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		what := "there are no checks"
		if len(all) > 0 {
			what = fmt.Sprintf("only %s, skip %s leaves none of the %d checks", listOrAll(only), listOrNone(skip), len(all))
		}
		return nil, fmt.Errorf("selection is empty: %s", what)
	}
	return out, nil
}

// Limits of what an error about a selection echoes back: the entries come
// from the user (or a remote caller) and may be many and long.
const (
	echoEntries  = 10
	echoEntryLen = 64
	listIDsUpTo  = 12
)

func quoteCapped(s []string) string {
	n := min(len(s), echoEntries)
	q := make([]string, n)
	for i, v := range s[:n] {
		q[i] = fmt.Sprintf("%q", cut(v, echoEntryLen))
	}
	out := strings.Join(q, ", ")
	if len(s) > n {
		out += fmt.Sprintf(" and %d more", len(s)-n)
	}
	return out
}

func listOrAll(s []string) string {
	if len(s) == 0 {
		return "(all)"
	}
	return quoteCapped(s)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return quoteCapped(s)
}

// validIDs names the valid IDs, or their families when there are many.
func validIDs(all []Check) string {
	if len(all) <= listIDsUpTo {
		ids := make([]string, len(all))
		for i, c := range all {
			ids[i] = c.ID
		}
		return "valid IDs: " + strings.Join(ids, ", ")
	}
	fams := families(all)
	parts := make([]string, len(fams))
	for i, f := range fams {
		parts[i] = fmt.Sprintf("%s (%d)", f.name, f.n)
	}
	return fmt.Sprintf("valid IDs: %d checks under the prefixes %s; `vnodediag checks` lists them", len(all), strings.Join(parts, ", "))
}

type family struct {
	name string
	n    int
}

func families(all []Check) []family {
	var out []family
	index := map[string]int{}
	for _, c := range all {
		f, _, _ := strings.Cut(c.ID, ".")
		i, ok := index[f]
		if !ok {
			i = len(out)
			index[f] = i
			out = append(out, family{name: f})
		}
		out[i].n++
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// suggest proposes the nearest ID or family for the first unknown entries
// that are a typo away from one.
func suggest(all []Check, unknown []string) string {
	var cands []string
	for _, f := range families(all) {
		cands = append(cands, f.name)
	}
	for _, c := range all {
		cands = append(cands, c.ID)
	}
	var hints []string
	for _, u := range unknown[:min(len(unknown), 3)] {
		u = strings.TrimSuffix(strings.TrimSpace(u), ".")
		if u == "" || len(u) > echoEntryLen {
			continue
		}
		// A typo is one edit in a short word, two in a longer one.
		limit := 2
		if len(u) < 6 {
			limit = 1
		}
		best, bestD := "", limit+1
		for _, c := range cands {
			if d := editDistance(u, c); d < bestD {
				best, bestD = c, d
			}
		}
		if best != "" {
			hints = append(hints, fmt.Sprintf("%q for %q", best, u))
		}
	}
	if len(hints) == 0 {
		return ""
	}
	return " (did you mean " + strings.Join(hints, ", ") + "?)"
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func matchesAny(all []Check, entry string) bool {
	for _, c := range all {
		if matchID(c.ID, entry) {
			return true
		}
	}
	return false
}

func matchAny(id string, entries []string) bool {
	for _, e := range entries {
		if matchID(id, e) {
			return true
		}
	}
	return false
}

func matchID(id, entry string) bool {
	entry = strings.TrimSpace(entry)
	if entry == "" {
		return false
	}
	if id == entry {
		return true
	}
	entry = strings.TrimSuffix(entry, ".")
	return len(id) > len(entry) && id[len(entry)] == '.' && strings.HasPrefix(id, entry)
}

// ListLimit is how many items of a long list one result names, in a
// summary, an evidence line or a remediation.
const ListLimit = 20

// JoinCapped joins at most ListLimit items and says how many were left out.
func JoinCapped(items []string) string { return JoinFirst(items, ListLimit) }

// JoinFirst joins the first n items and says how many were left out; for
// a summary line, which names fewer than ListLimit.
func JoinFirst(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s ... and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
