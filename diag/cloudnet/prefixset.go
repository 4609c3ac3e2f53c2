package cloudnet

import "net/netip"

// PrefixSet is a binary trie of prefixes, one per address family. It answers
// the two questions the coverage checks ask in time proportional to the
// prefix length (plus the routes inside the asked prefix), never by scanning
// the table: which stored prefix is the longest match for p, and which parts
// of p no stored prefix covers.
type PrefixSet struct {
	v4, v6 []trieNode
	n      int
}

type trieNode struct {
	child [2]int32 // 0: none (the root is never a child)
	val   int32    // -1: no prefix ends here
}

// NewPrefixSet returns an empty set.
func NewPrefixSet() *PrefixSet { return NewPrefixSetSize(0) }

// NewPrefixSetSize returns an empty set with room for about n prefixes.
func NewPrefixSetSize(n int) *PrefixSet {
	s := &PrefixSet{v4: make([]trieNode, 1, 1+2*n), v6: make([]trieNode, 1)}
	s.v4[0].val, s.v6[0].val = -1, -1
	return s
}

// Len is the number of distinct prefixes stored.
func (s *PrefixSet) Len() int { return s.n }

func (s *PrefixSet) nodes(p netip.Prefix) *[]trieNode {
	if p.Addr().Is4() {
		return &s.v4
	}
	return &s.v6
}

// addrBits holds an address's bytes left-aligned (IPv4 in the first 4), so
// that reading bits allocates nothing.
type addrBits [16]byte

func addrBytes(a netip.Addr) addrBits {
	if a.Is4() {
		var b addrBits
		v := a.As4()
		copy(b[:], v[:])
		return b
	}
	return addrBits(a.As16())
}

func bitAt(b addrBits, i int) int { return int(b[i/8]>>(7-uint(i%8))) & 1 }

// Insert stores p with the value val (>= 0); a prefix stored twice keeps the
// first value. Invalid prefixes are ignored.
func (s *PrefixSet) Insert(p netip.Prefix, val int32) {
	if !p.IsValid() {
		return
	}
	p = p.Masked()
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	ns := s.nodes(p)
	b := addrBytes(p.Addr())
	cur := int32(0)
	for i := 0; i < p.Bits(); i++ {
		bit := bitAt(b, i)
		next := (*ns)[cur].child[bit]
		if next == 0 {
			*ns = append(*ns, trieNode{val: -1})
			next = int32(len(*ns) - 1)
			(*ns)[cur].child[bit] = next
		}
		cur = next
	}
	if (*ns)[cur].val < 0 {
		(*ns)[cur].val = val
		s.n++
	}
}

// Longest returns the value and prefix of the longest stored prefix that
// contains p (is equal to it or less specific).
func (s *PrefixSet) Longest(p netip.Prefix) (val int32, match netip.Prefix, ok bool) {
	p = p.Masked()
	ns := *s.nodes(p)
	b := addrBytes(p.Addr())
	cur := int32(0)
	for i := 0; ; i++ {
		if v := ns[cur].val; v >= 0 {
			val, match, ok = v, netip.PrefixFrom(p.Addr(), i).Masked(), true
		}
		if i == p.Bits() {
			return
		}
		cur = ns[cur].child[bitAt(b, i)]
		if cur == 0 {
			return
		}
	}
}

// Uncovered returns the parts of p that no stored prefix covers, as the
// fewest CIDRs in address order, at most limit of them (limit <= 0: all),
// and whether the list was cut.
func (s *PrefixSet) Uncovered(p netip.Prefix, limit int) (holes []netip.Prefix, truncated bool) {
	p = p.Masked()
	ns := *s.nodes(p)
	b := addrBytes(p.Addr())
	cur := int32(0)
	for i := 0; i < p.Bits(); i++ {
		if ns[cur].val >= 0 {
			return nil, false
		}
		cur = ns[cur].child[bitAt(b, i)]
		if cur == 0 {
			return []netip.Prefix{p}, false
		}
	}
	if ns[cur].val >= 0 {
		return nil, false
	}
	buf := b[:p.Addr().BitLen()/8]
	// walk visits node n (a valid node at depth, not a stored prefix) and
	// records the empty branches below it as holes.
	var walk func(n int32, depth int) bool
	walk = func(n int32, depth int) bool {
		if depth == len(buf)*8 {
			return true
		}
		mask := byte(1) << (7 - uint(depth%8))
		for bit := 0; bit < 2; bit++ {
			if bit == 1 {
				buf[depth/8] |= mask
			} else {
				buf[depth/8] &^= mask
			}
			c := ns[n].child[bit]
			ok := true
			switch {
			case c == 0:
				if limit > 0 && len(holes) >= limit {
					truncated, ok = true, false
					break
				}
				a, _ := netip.AddrFromSlice(buf)
				holes = append(holes, netip.PrefixFrom(a, depth+1).Masked())
			case ns[c].val < 0:
				ok = walk(c, depth+1)
			}
			buf[depth/8] &^= mask
			if !ok {
				return false
			}
		}
		return true
	}
	walk(cur, p.Bits())
	return holes, truncated
}

// Within returns up to limit values of stored prefixes strictly inside p
// (more specific than p), in address order.
func (s *PrefixSet) Within(p netip.Prefix, limit int) []int32 {
	p = p.Masked()
	ns := *s.nodes(p)
	b := addrBytes(p.Addr())
	cur := int32(0)
	for i := 0; i < p.Bits(); i++ {
		cur = ns[cur].child[bitAt(b, i)]
		if cur == 0 {
			return nil
		}
	}
	var out []int32
	var walk func(n int32, top bool)
	walk = func(n int32, top bool) {
		if n == 0 || (limit > 0 && len(out) >= limit) {
			return
		}
		if !top && ns[n].val >= 0 {
			out = append(out, ns[n].val)
		}
		walk(ns[n].child[0], false)
		walk(ns[n].child[1], false)
	}
	walk(cur, true)
	return out
}
