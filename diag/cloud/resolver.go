package cloud

import (
	"context"
	"slices"
)

// resolver reads the PrivateZone resolver of the region: the resolver
// endpoints and the forwarding rules with their bound VPCs, in parallel.
func (g *gatherer) resolver(ctx context.Context) {
	parallel(func() {
		readList(ctx, g, PartEndpoints, actionDescribeResolverEndpoints, func(ctx context.Context, n int) ([]ResolverEndpoint, int, error) {
			p, err := g.pvtz.describeResolverEndpoints(ctx, listQuery{Region: g.s.region, PageNumber: n, PageSize: maxPvtzPageSize})
			return p.Endpoints, p.TotalItems, err
		}, func(l []ResolverEndpoint) { g.snap.Endpoints = l })
	}, func() {
		readList(ctx, g, PartRules, actionDescribeResolverRules, func(ctx context.Context, n int) ([]ResolverRule, int, error) {
			p, err := g.pvtz.describeResolverRules(ctx, listQuery{PageNumber: n, PageSize: maxPvtzPageSize})
			return p.Rules, p.TotalItems, err
		}, func(l []ResolverRule) { g.snap.Rules = l })
	})
}

// zones reads the PrivateZone zones bound to the VPC, then looks up each
// zone of dns.privateZones that is not among them: by its exact name and,
// when it exists, its bindings (DescribeZoneInfo), to say where it is
// bound instead.
func (g *gatherer) zones(ctx context.Context, vpcID string) {
	var bound []Zone
	readList(ctx, g, PartZones, actionDescribeZones, func(ctx context.Context, n int) ([]Zone, int, error) {
		p, err := g.pvtz.describeZones(ctx, zoneQuery{VPCID: vpcID, Region: g.s.region, PageNumber: n, PageSize: maxPvtzPageSize})
		return p.Zones, p.TotalItems, err
	}, func(l []Zone) { g.snap.Zones, bound = l, l })
	g.mu.Lock()
	failed := g.snap.Errors[PartZones] != nil
	g.mu.Unlock()
	if failed || g.dns == nil {
		return
	}
	var unbound []string
	for _, name := range g.dns.PrivateZones {
		if !slices.ContainsFunc(bound, func(z Zone) bool { return z.Name == name }) {
			unbound = append(unbound, name)
		}
	}
	each(unbound, func(name string) {
		l := g.lookupZone(ctx, name)
		g.mu.Lock()
		g.snap.ZoneLookups[name] = l
		g.mu.Unlock()
	})
}

func (g *gatherer) lookupZone(ctx context.Context, name string) *ZoneLookup {
	var found []Zone
	err := g.c.do(ctx, actionDescribeZones, func(ctx context.Context) error {
		p, err := g.pvtz.describeZones(ctx, zoneQuery{Name: name, PageNumber: 1, PageSize: maxPvtzPageSize})
		found = p.Zones
		return err
	})
	if err != nil {
		return &ZoneLookup{Err: g.partErr(PartZones, actionDescribeZones, err)}
	}
	i := slices.IndexFunc(found, func(z Zone) bool { return z.Name == name })
	if i < 0 {
		return &ZoneLookup{}
	}
	var info ZoneLookup
	err = g.c.do(ctx, actionDescribeZoneInfo, func(ctx context.Context) error {
		var err error
		info, err = g.pvtz.describeZoneInfo(ctx, found[i].ID)
		return err
	})
	if err != nil {
		return &ZoneLookup{Found: true, ID: found[i].ID, Err: g.partErr(PartZones, actionDescribeZoneInfo, err)}
	}
	return &info
}
