package diag

import (
	"context"
	"fmt"
	"slices"
	"strings"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Version is the vnodediag version, set at link time.
var Version = "dev"

// SourceName names a source of facts a check reads.
type SourceName string

// The sources of a run.
const (
	SourceKube   SourceName = "kube"
	SourceBGP    SourceName = "bgp"
	SourceDNS    SourceName = "dns"
	SourceRoutes SourceName = "routes"
	SourceCloud  SourceName = "cloud"
)

// Check is one diagnostic with a stable dotted ID. Run must be read-only,
// must not print, and must obey ctx; it gets the run's gathered sources and
// returns one or more results. The runner fills CheckId and Duration.
type Check struct {
	ID    string
	Title string
	Needs []SourceName
	// Optional sources are gathered when the run has them and read when
	// present (a nil value otherwise). A check without Needs runs when at
	// least one of them was gathered, else it takes their SKIP or ERROR.
	Optional  []SourceName
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
// are an error that lists the valid IDs, so a typo never silently runs
// everything or skips nothing.
func Select(all []Check, only, skip []string) ([]Check, error) {
	var unknown []string
	for _, e := range append(append([]string{}, only...), skip...) {
		if !matchesAny(all, e) {
			unknown = append(unknown, e)
		}
	}
	if len(unknown) > 0 {
		ids := make([]string, len(all))
		for i, c := range all {
			ids[i] = c.ID
		}
		return nil, fmt.Errorf("unknown check ID or prefix %s; valid IDs: %s",
			quoteAll(unknown), strings.Join(ids, ", "))
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
	return out, nil
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
	prefix := strings.TrimSuffix(entry, ".") + "."
	return strings.HasPrefix(id, prefix)
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
