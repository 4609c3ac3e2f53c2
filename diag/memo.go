package diag

import (
	"reflect"
	"slices"
	"sync"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"google.golang.org/protobuf/proto"
)

// Generational is a source value that says which state of its source it
// was read from: two values of the same source with the same non-zero
// generation hold the same facts (a watch cache's snapshot: the generation
// counts the cache's changes). A memo keys such a value by its generation
// instead of its identity, so a cache that did not change costs no rerun
// even though each gather builds a new value.
type Generational interface {
	Generation() uint64
}

// Releaser is a source value that shares memory with a longer-lived
// store (a watch cache's snapshot): the runner calls Release once nothing
// of its run reads the value any more, checks it abandoned included, so
// the store may write that memory in place again. A run with a Gather
// still stuck past its deadline releases nothing: the store then copies,
// as for a value never released.
type Releaser interface {
	Release()
}

// Parted is a Generational source value made of parts that change apart
// (a watch cache's snapshot: nodes, pods, DaemonSets, ...). A check that
// names the parts it reads (Check.Reads) is given the value with those
// parts alone, and a memo keys it by their generations instead of the
// whole value's, so a change of one part reruns only the checks that read
// it.
type Parted interface {
	Generational
	// PartGeneration is part's generation, with the same promise as
	// Generation's for that part alone; ok is false for a part the value
	// does not know (the memo then keys the check by the whole value).
	PartGeneration(part string) (gen uint64, ok bool)
	// Only is a copy of the value that holds parts alone (what all parts
	// share, such as the value's identity, stays).
	Only(parts []string) any
}

// Memo keeps each check's results of the last run that ran it, keyed by
// what the check read: the generation (see Generational) or the identity
// of the value of every source it needs or may use, and of a Parted value
// the generations of the parts the check names (Check.Reads). A Runner with a Memo
// reuses the results of a check whose sources did not change since, and
// reruns only the others; the report is what a run without the memo gives
// (the reused results keep the duration of the run that produced them).
//
// A memo belongs to one Runner (its limits are part of what the results
// depend on) and holds one entry per check: its memory is bounded by the
// results of one run. Results with an ERROR status are never reused: a
// timeout or an interruption says nothing about the next run. A source
// value that is neither Generational nor comparable (a slice, a map)
// makes the checks that read it rerun every time.
//
// Two runs that miss the same check under the same key at the same time
// (a periodic run and a Diagnose) compute it once: the second waits for
// the first's results.
//
// Reused results are shared, not copied: the memo and every report that
// reused them hold the same messages (a daemon answering from a warm
// cache copies nothing). Whoever reads a report of a Runner with a Memo
// must therefore not modify its results; the runner's own trimming of a
// report over its budget works on copies.
type Memo struct {
	mu      sync.Mutex
	entries map[string]memoEntry
	// flights are the checks a run is computing right now: a run that
	// misses the same check under the same key waits for those results
	// instead of computing them a second time.
	flights map[string]*flight
	hits    uint64
	misses  uint64
}

type memoEntry struct {
	key     []any
	results []*pb.Result
}

// NewMemo returns an empty memo.
func NewMemo() *Memo { return &Memo{entries: map[string]memoEntry{}} }

// generationKey stands for a Generational value in a memo key.
type generationKey struct {
	typ reflect.Type
	gen uint64
}

// absentKey stands for an optional source the run did not gather.
type absentKey struct{}

// memoKey is what c reads in this run, or ok false when part of it
// cannot be compared.
func memoKey(c Check, g map[SourceName]*gathered) (key []any, ok bool) {
	names := slices.Concat(c.Needs, c.Optional)
	key = make([]any, 0, len(names))
	for _, n := range names {
		s := g[n]
		if s == nil || s.err != nil {
			key = append(key, absentKey{})
			continue
		}
		v := s.value
		if pv, isParted := v.(Parted); isParted && len(c.Reads) > 0 && pv.Generation() != 0 {
			if parts, all := partKeys(pv, c.Reads); all {
				key = append(key, parts...)
				continue
			}
		}
		if gv, isGen := v.(Generational); isGen {
			if gen := gv.Generation(); gen != 0 {
				key = append(key, generationKey{typ: reflect.TypeOf(v), gen: gen})
				continue
			}
		}
		if v == nil {
			key = append(key, absentKey{})
			continue
		}
		t := reflect.TypeOf(v)
		if !t.Comparable() || t.Kind() != reflect.Pointer {
			// Identity is only meaningful for a pointer; a value type
			// that compares equal may still share changed memory.
			return nil, false
		}
		key = append(key, v)
	}
	return key, true
}

// partKey stands for one part of a Parted value in a memo key.
type partKey struct {
	typ  reflect.Type
	part string
	gen  uint64
}

// partKeys are the keys of v's parts named by reads; all is false when v
// does not know one of them.
func partKeys(v Parted, reads []string) (keys []any, all bool) {
	keys = make([]any, 0, len(reads))
	for _, part := range reads {
		gen, ok := v.PartGeneration(part)
		if !ok || gen == 0 {
			return nil, false
		}
		keys = append(keys, partKey{typ: reflect.TypeOf(v), part: part, gen: gen})
	}
	return keys, true
}

func sameKey(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// flight is a check some run is computing results for under key; done
// is closed once they are stored, or known not to be.
type flight struct {
	key  []any
	done chan struct{}
}

// peek returns the results stored for check id under key, if any,
// without waiting for or claiming a check being computed: see claim.
func (m *Memo) peek(id string, key []any) ([]*pb.Result, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stored(id, key)
}

// stored is peek with m.mu held.
func (m *Memo) stored(id string, key []any) ([]*pb.Result, bool) {
	e, ok := m.entries[id]
	if !ok || !sameKey(e.key, key) {
		return nil, false
	}
	m.hits++
	return e.results, true
}

// claim returns the results stored for check id under key (hit): shared
// with the memo and every report that reused them, never to be written.
// Otherwise, when another run is computing them under the same key, it
// returns that run's wait channel: claim again once it is closed. Else the
// caller computes them and must pass f (nil when another run computes the
// check under another key) to land.
func (m *Memo) claim(id string, key []any) (results []*pb.Result, hit bool, wait <-chan struct{}, f *flight) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if res, ok := m.stored(id, key); ok {
		return res, true, nil, nil
	}
	if other := m.flights[id]; other != nil {
		if sameKey(other.key, key) {
			return nil, false, other.done, nil
		}
		m.misses++
		return nil, false, nil, nil
	}
	m.misses++
	f = &flight{key: key, done: make(chan struct{})}
	if m.flights == nil {
		m.flights = map[string]*flight{}
	}
	m.flights[id] = f
	return nil, false, nil, f
}

// land keeps results for check id under key, replacing the check's
// previous entry, unless keep is false or one of them is an ERROR (that
// drops the entry: a timeout says nothing about the next run); then it
// ends flight f, so the runs waiting for it claim again. The results must
// be finished (see finish): from here on they are shared and never
// written.
func (m *Memo) land(id string, key []any, results []*pb.Result, keep bool, f *flight) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case slices.ContainsFunc(results, func(r *pb.Result) bool { return r.GetStatus() == pb.Status_ERROR }):
		delete(m.entries, id)
	case keep:
		m.entries[id] = memoEntry{key: key, results: results}
	}
	if f != nil {
		if m.flights[id] == f {
			delete(m.flights, id)
		}
		close(f.done)
	}
}

// Stats returns how many checks the memo answered (hits) and how many it
// could not (misses) so far.
func (m *Memo) Stats() (hits, misses uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits, m.misses
}

// Len is the number of checks the memo holds results of.
func (m *Memo) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func cloneResults(in []*pb.Result) []*pb.Result {
	out := make([]*pb.Result, len(in))
	for i, r := range in {
		out[i] = proto.Clone(r).(*pb.Result)
	}
	return out
}
