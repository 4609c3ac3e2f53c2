package cloud

import (
	"context"
	"fmt"
	"slices"
)

// maxVBRTables bounds the VBR route tables read when cloud.vbrIds is not
// set: every VBR of the region is a candidate, and a region rarely has
// more.
const maxVBRTables = 20

// leasedLine reads the leased line of the region: every VBR, every BGP
// peer and every advertised BGP network (three paging chains in
// parallel), then the route table of each candidate VBR (configured, or
// every VBR of the region up to maxVBRTables). Which VBRs serve the
// cluster is decided when the checks run, from the VPC's routes and
// networks and, when the bgp section is there, the observer's peers.
func (g *gatherer) leasedLine(ctx context.Context) {
	parallel(func() {
		readList(ctx, g, PartBGPPeers, actionDescribeBgpPeers, func(ctx context.Context, n int) ([]BGPPeer, int, error) {
			p, err := g.line.describeBgpPeers(ctx, listQuery{Region: g.s.region, PageNumber: n, PageSize: maxPageSize})
			return p.Peers, p.TotalCount, err
		}, func(l []BGPPeer) { g.snap.BGPPeers = l })
	}, func() {
		readList(ctx, g, PartBGPNetworks, actionDescribeBgpNetworks, func(ctx context.Context, n int) ([]BGPNetwork, int, error) {
			p, err := g.line.describeBgpNetworks(ctx, listQuery{Region: g.s.region, PageNumber: n, PageSize: maxPageSize})
			return p.Networks, p.TotalCount, err
		}, func(l []BGPNetwork) { g.snap.BGPNetworks = l })
	}, func() { g.vbrs(ctx) })
}

// vbrs lists the VBRs and reads the route table of each candidate, all in
// parallel.
func (g *gatherer) vbrs(ctx context.Context) {
	list, err := pagesByNumber(ctx, g.c, actionDescribeVirtualBorderRouters, func(ctx context.Context, n int) ([]VBR, int, error) {
		p, err := g.line.describeVirtualBorderRouters(ctx, listQuery{Region: g.s.region, PageNumber: n, PageSize: maxPageSize})
		return p.VBRs, p.TotalCount, err
	})
	if err != nil {
		g.mu.Lock()
		g.snap.Errors[PartVBRs] = g.partErr(PartVBRs, actionDescribeVirtualBorderRouters, err)
		g.mu.Unlock()
		return
	}
	vbrs := make([]*VBR, len(list))
	var read []*VBR
	for i := range list {
		v := &list[i]
		vbrs[i] = v
		if len(g.s.expect.VBRIDs) == 0 && len(read) < maxVBRTables || slices.Contains(g.s.expect.VBRIDs, v.ID) {
			read = append(read, v)
		}
	}
	each(read, func(v *VBR) { g.vbrTable(ctx, v) })
	g.mu.Lock()
	g.snap.VBRs = vbrs
	g.mu.Unlock()
}

// vbrTable reads a VBR's one route table and its entries.
func (g *gatherer) vbrTable(ctx context.Context, v *VBR) {
	tables, err := g.routeTables(ctx, listQuery{Region: g.s.region, RouterType: "VBR", RouterID: v.ID})
	switch {
	case err != nil:
		v.TableErr = g.partErr(PartVBRs, actionDescribeRouteTableList, fmt.Errorf("route table of VBR %s: %w", v.ID, err))
		return
	case len(tables) == 0:
		// Every VBR has exactly one route table.
		v.TableErr = &PartError{Part: PartVBRs, Action: actionDescribeRouteTableList, Permission: true,
			Err: fmt.Errorf("%s listed no route table for VBR %s, which always has one: the RAM policy hides it", actionDescribeRouteTableList, v.ID)}
		return
	}
	t := &tables[0]
	g.entries(ctx, t)
	if t.EntriesErr != nil {
		v.TableErr = t.EntriesErr
		return
	}
	v.Table = t
}
