package cloud

import (
	"net/netip"
	"sort"
)

// tableIndex answers route lookups on one table without scanning it:
// entries by exact destination, so that the longest match of a prefix is
// at most 33 (IPv4) or 129 (IPv6) map lookups.
type tableIndex struct {
	t      *RouteTable
	byDest map[netip.Prefix][]*RouteEntry
}

func indexTable(t *RouteTable) *tableIndex {
	ix := &tableIndex{t: t, byDest: make(map[netip.Prefix][]*RouteEntry, len(t.Entries))}
	for i := range t.Entries {
		e := &t.Entries[i]
		ix.byDest[e.Dest] = append(ix.byDest[e.Dest], e)
	}
	for _, es := range ix.byDest {
		if len(es) > 1 {
			sort.SliceStable(es, func(i, j int) bool { return preference(es[i]) < preference(es[j]) })
		}
	}
	return ix
}

// preference orders entries with the same destination as the VPC router
// does: system and custom routes before learned (BGP, CEN, ECR) ones.
func preference(e *RouteEntry) int {
	switch e.Type {
	case "System":
		return 0
	case "Custom":
		return 1
	}
	return 2
}

// exact is the entries whose destination is exactly p.
func (ix *tableIndex) exact(p netip.Prefix) []*RouteEntry { return ix.byDest[p.Masked()] }

// longest is the entry the VPC router uses for traffic to all of p: the
// longest destination that contains p (nil: none, the VPC drops it).
// Entries more specific than p, inside it, are what moreSpecific returns.
func (ix *tableIndex) longest(p netip.Prefix) *RouteEntry {
	p = p.Masked()
	for bits := p.Bits(); bits >= 0; bits-- {
		q, err := p.Addr().Prefix(bits)
		if err != nil {
			continue
		}
		if es := ix.byDest[q]; len(es) > 0 {
			return es[0]
		}
	}
	return nil
}

// moreSpecific is the entries strictly inside p, which take part of p's
// traffic elsewhere than its longest match.
func (ix *tableIndex) moreSpecific(p netip.Prefix) []*RouteEntry {
	var out []*RouteEntry
	for i := range ix.t.Entries {
		e := &ix.t.Entries[i]
		if e.Dest.Bits() > p.Bits() && p.Contains(e.Dest.Addr()) {
			out = append(out, e)
		}
	}
	return out
}

// toInstance reports whether e is what the cloud controller manager writes
// for a node: a custom entry with one next hop, the node's instance.
func toInstance(e *RouteEntry, instance string) bool {
	return e.Type == "Custom" && len(e.NextHops) == 1 && e.NextHops[0].Type == "Instance" && e.NextHops[0].ID == instance
}

// podRange is where the cluster's ECS pod routes live: the smallest prefix
// covering every ECS node's podCIDR, widened to at least a /16 (IPv4) or
// /48 (IPv6), the usual cluster CIDR. A custom instance route inside it for
// no current node is stale; one outside it is someone else's route.
func podRange(cidrs []netip.Prefix) (v4, v6 netip.Prefix) {
	for _, c := range cidrs {
		if c.Addr().Is4() {
			v4 = cover(v4, c, 16)
		} else {
			v6 = cover(v6, c, 48)
		}
	}
	return v4, v6
}

// cover is the smallest prefix containing a and b, no longer than maxBits.
func cover(a, b netip.Prefix, maxBits int) netip.Prefix {
	if !a.IsValid() {
		a = b
	}
	bits := min(a.Bits(), b.Bits(), maxBits)
	for ; bits > 0; bits-- {
		pa, _ := a.Addr().Prefix(bits)
		pb, _ := b.Addr().Prefix(bits)
		if pa == pb {
			return pa
		}
	}
	p, _ := a.Addr().Prefix(0)
	return p
}
