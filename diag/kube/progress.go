package kube

import (
	"context"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/vnodediag/vnodediag/diag"
)

// tracker counts what the lists of one gather have read, page by page, and
// reports it as the source's progress: "3 nodes, 1,500/150,000 pods". The
// total of a list is the server's estimate (remainingItemCount) when it gives
// one; it is not given for lists with a field selector, for example.
type tracker struct {
	mu     sync.Mutex
	listed map[string]int64
	total  map[string]int64
}

type trackerKey struct{}

// withTracker returns ctx with a tracker when anyone listens to progress.
func withTracker(ctx context.Context) context.Context {
	if !diag.Reporting(ctx) {
		return ctx
	}
	return context.WithValue(ctx, trackerKey{}, &tracker{listed: map[string]int64{}, total: map[string]int64{}})
}

func trackerOf(ctx context.Context) *tracker {
	t, _ := ctx.Value(trackerKey{}).(*tracker)
	return t
}

// page records one page of part and reports the progress of nodes and pods,
// the lists a large cluster waits for.
func (t *tracker) page(ctx context.Context, part string, obj runtime.Object) {
	n := int64(meta.LenList(obj))
	var remaining *int64
	last := true
	if l, err := meta.ListAccessor(obj); err == nil {
		remaining, last = l.GetRemainingItemCount(), l.GetContinue() == ""
	}
	t.mu.Lock()
	t.listed[part] += n
	switch {
	case remaining != nil:
		t.total[part] = t.listed[part] + *remaining
	case last:
		t.total[part] = t.listed[part]
	default:
		t.total[part] = 0 // more pages, no estimate
	}
	if part != PartNodes && part != PartPods {
		t.mu.Unlock()
		return
	}
	pods, podsTotal := t.listed[PartPods], t.total[PartPods]
	msg := count(t.listed[PartNodes], t.total[PartNodes]) + " nodes, " + count(pods, podsTotal) + " pods"
	t.mu.Unlock()
	diag.ReportProgress(ctx, diag.Progress{Kind: diag.SourceUpdate, Source: Source.Name(), Message: msg, Done: pods, Total: podsTotal})
}

// count is "1,500/150,000", or "1,500" when the total is not known.
func count(done, total int64) string {
	if total > done {
		return Thousands(done) + "/" + Thousands(total)
	}
	return Thousands(done)
}

// Thousands writes n with commas: 150000 -> "150,000".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
