package kube

import (
	"fmt"
	"hash/maphash"
	"reflect"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// compactStore is what a reflector of the watch cache writes to: it keeps
// every object only in the compact form T the checks read, in one slice
// that a snapshot can share.
//
// The slice handed to a snapshot is not written while the snapshot may be
// read: the next change copies it first (copy on write), so a run reads a
// consistent view while the watch goes on, and a cluster that does not
// change costs no copy. A view that is released (its run ended) no longer
// counts: a change after every view was released writes in place, so a
// daemon whose runs end before the next change copies nothing (at 150,000
// pods a copy is 18 MB of garbage).
// The order of the items is not the server's: a deletion moves the last
// item into the hole. An update whose compact form equals the item's is
// no change: the compact form is all checks read.
type compactStore[T any] struct {
	compact func(runtime.Object) (T, error)

	// itemKey, when set, is the key of an item, found from the item
	// itself; without it the store keeps every item's key beside it (keys).
	itemKey func(*T) storeKey

	mu    sync.Mutex
	index map[storeKey]int
	keys  []storeKey // nil with itemKey
	items []T
	// readers counts the views of items not yet released; epoch names
	// the array items is, so that releasing a view of an older array
	// (copied since) counts nothing.
	readers int
	epoch   uint64
	// replaced counts Replace calls: the initial list and every relist.
	replaced uint64
	// changes counts every change of the items (a Replace is one).
	changes uint64
}

func newCompactStore[T any](compact func(runtime.Object) (T, error)) *compactStore[T] {
	return &compactStore[T]{compact: compact, index: map[storeKey]int{}}
}

// newKeyedStore is a compactStore whose items carry what keys them
// (itemKey): it keeps no key beside each item, 16 bytes an item (2.4 MB
// at 150,000 pods).
func newKeyedStore[T any](compact func(runtime.Object) (T, error), itemKey func(*T) storeKey) *compactStore[T] {
	return &compactStore[T]{compact: compact, itemKey: itemKey, index: map[storeKey]int{}}
}

// keyAt is the key of the item at i.
func (s *compactStore[T]) keyAt(i int) storeKey {
	if s.itemKey != nil {
		return s.itemKey(&s.items[i])
	}
	return s.keys[i]
}

// compacted is an object in its compact form with the name that keys it:
// the form the reflector's own temporary store holds during a streaming
// list (see Transformer), so that not even the initial list keeps whole
// objects.
type compacted[T any] struct {
	namespace, name string
	v               T
}

// GetObjectMeta lets the reflector's stores key a compacted object.
func (c *compacted[T]) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: c.namespace, Name: c.name}
}

func (c *compacted[T]) key() storeKey { return keyOf(c.namespace, c.name) }

// storeKey identifies an object in a compactStore: a 128-bit hash of its
// namespace and name (two seeded maphashes), 16 bytes where the string
// "namespace/name" cost an allocation of its own for every object (7 MB at
// 150,000 pods). Two of n objects share a key with a probability of about
// n²/2^129: 1e-28 for 150,000.
type storeKey [2]uint64

var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// keyOf is the storeKey of namespace/name ("" for a cluster-scoped
// object: a namespace never contains "/", so no two names meet).
func keyOf(namespace, name string) storeKey {
	var k storeKey
	for i, seed := range keySeeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(namespace)
		h.WriteByte('/')
		h.WriteString(name)
		k[i] = h.Sum64()
	}
	return k
}

func (s *compactStore[T]) entry(obj any) (*compacted[T], error) {
	switch o := obj.(type) {
	case *compacted[T]:
		return o, nil
	case runtime.Object:
		m, err := meta.Accessor(o)
		if err != nil {
			return nil, err
		}
		v, err := s.compact(o)
		if err != nil {
			return nil, err
		}
		return &compacted[T]{namespace: m.GetNamespace(), name: m.GetName(), v: v}, nil
	default:
		return nil, fmt.Errorf("watch cache: unexpected object %T", obj)
	}
}

// Transformer implements cache.TransformingStore: the reflector compacts
// each object of a streaming list as it arrives.
func (s *compactStore[T]) Transformer() cache.TransformFunc {
	return func(obj any) (any, error) { return s.entry(obj) }
}

// own makes items writable: while a view of it is out, a copy.
func (s *compactStore[T]) own() {
	if s.readers > 0 {
		s.items = slices.Clone(s.items)
		s.readers = 0
		s.epoch++
	}
}

func (s *compactStore[T]) put(obj any) error {
	e, err := s.entry(obj)
	if err != nil {
		return err
	}
	k := e.key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[k]; ok {
		if reflect.DeepEqual(s.items[i], e.v) {
			// Nothing a check reads changed (a heartbeat, a readiness
			// condition, a label no check keeps): the generation stays,
			// and a daemon's memo keeps the results that read it.
			return nil
		}
		s.own()
		s.changes++
		s.items[i] = e.v
		return nil
	}
	s.own()
	s.changes++
	s.index[k] = len(s.items)
	if s.itemKey == nil {
		s.keys = append(s.keys, k)
	}
	s.items = append(s.items, e.v)
	return nil
}

// Add implements cache.ReflectorStore.
func (s *compactStore[T]) Add(obj any) error { return s.put(obj) }

// Update implements cache.ReflectorStore.
func (s *compactStore[T]) Update(obj any) error { return s.put(obj) }

// Delete implements cache.ReflectorStore.
func (s *compactStore[T]) Delete(obj any) error {
	var k storeKey
	if c, ok := obj.(interface{ key() storeKey }); ok {
		k = c.key()
	} else {
		m, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		k = keyOf(m.GetNamespace(), m.GetName())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[k]
	if !ok {
		return nil
	}
	s.own()
	s.changes++
	last := len(s.items) - 1
	if i != last {
		moved := s.keyAt(last)
		s.items[i] = s.items[last]
		if s.keys != nil {
			s.keys[i] = moved
		}
		s.index[moved] = i
	}
	var zero T
	s.items[last] = zero
	s.items = s.items[:last]
	if s.keys != nil {
		s.keys = s.keys[:last]
	}
	delete(s.index, k)
	return nil
}

// Replace implements cache.ReflectorStore: the result of a (re)list.
func (s *compactStore[T]) Replace(list []any, _ string) error {
	index := make(map[storeKey]int, len(list))
	var keys []storeKey
	if s.itemKey == nil {
		keys = make([]storeKey, 0, len(list))
	}
	items := make([]T, 0, len(list))
	for i, obj := range list {
		e, err := s.entry(obj)
		if err != nil {
			return err
		}
		list[i] = nil // the list is ours: let its objects go as we go
		k := e.key()
		if j, ok := index[k]; ok {
			items[j] = e.v
			continue
		}
		index[k] = len(items)
		if s.itemKey == nil {
			keys = append(keys, k)
		}
		items = append(items, e.v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index, s.keys, s.items, s.readers = index, keys, items, 0
	s.epoch++
	s.replaced++
	s.changes++
	return nil
}

// Resync implements cache.ReflectorStore; there is nothing to resync.
func (s *compactStore[T]) Resync() error { return nil }

// view returns the items as they are now, not written again until
// release is called (once; a view never released is never written); ok is
// false before the first list.
func (s *compactStore[T]) view() (items []T, release func(), ok bool) {
	items, release, _, ok = s.viewAt()
	return items, release, ok
}

// viewAt is view, with the generation of the items it returns.
func (s *compactStore[T]) viewAt() (items []T, release func(), gen uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readers++
	epoch := s.epoch
	release = func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.epoch == epoch {
			s.readers--
		}
	}
	return s.items[:len(s.items):len(s.items)], release, s.changes, s.replaced > 0
}

// generation counts the changes of the items so far.
func (s *compactStore[T]) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changes
}

// lists is the number of lists (Replace calls) so far.
func (s *compactStore[T]) lists() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replaced
}

var _ cache.TransformingStore = (*compactStore[Pod])(nil)
