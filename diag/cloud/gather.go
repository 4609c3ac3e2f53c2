package cloud

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
)

// gatherer reads one snapshot. Independent lists are read in parallel, each
// list by one chain of paged calls:
//
//	instances (by ID, 100 per call, per region, in parallel)
//	  -> [vpcId not configured: the VPC is discovered from them]
//	     DescribeVpcs | DescribeVSwitches pages | DescribeRouteTableList pages
//	                                                -> per table: DescribeRouteEntryList pages
//	     | DescribeZones (bound to the VPC) -> configured zones not bound: DescribeZones (by name) -> DescribeZoneInfo
//	  -> security groups of the nodes' instances and of ECI:
//	     DescribeSecurityGroups | per group: DescribeSecurityGroupAttribute pages
//	DescribeVirtualBorderRouters pages -> per VBR: DescribeRouteTableList (VBR) -> DescribeRouteEntryList pages
//	DescribeBgpPeers pages | DescribeBgpNetworks pages
//	DescribeResolverEndpoints pages | DescribeResolverRules pages
//	(at the end, only for ECI vSwitches not in the VPC: DescribeVSwitches by ID)
//
// With vpcId configured the VPC chain starts at once, beside the
// instances.
type gatherer struct {
	ecs  ecsAPI
	vpc  vpcAPI
	line leasedLineAPI
	pvtz pvtzAPI
	s    *settings
	c    *caller
	cred *resolved
	// dns is the canonical dns section (nil: none): which PrivateZone zones
	// to look up.
	dns *dnsprobe.Config

	mu   sync.Mutex
	snap *Snapshot
	// onVPC, while set, hears the VPC of each instance found in the
	// configured region (under mu).
	onVPC func(vpcID string)
}

// nodeRef is an ECS node and the instance its providerID names.
type nodeRef struct {
	node     string
	instance string
	// region is the providerID's region; empty when the providerID lacks
	// it (k8s.providerid-format fails such a node; the cloud source still
	// looks the instance up in the configured region, to name the fix).
	region string
}

var instanceIDRe = regexp.MustCompile(`\bi-[a-z0-9]{8,}\b`)

// ecsRef is the instance an ECS node names, if any.
func ecsRef(n *corev1.Node) (nodeRef, bool) {
	if kube.ClassOf(n) != kube.ClassECS || n.Spec.ProviderID == "" {
		return nodeRef{}, false
	}
	if id, err := kube.ParseProviderID(n.Spec.ProviderID); err == nil {
		return nodeRef{node: n.Name, instance: id.Instance, region: id.Region}, true
	}
	if m := instanceIDRe.FindString(n.Spec.ProviderID); m != "" {
		return nodeRef{node: n.Name, instance: m}, true
	}
	return nodeRef{}, false
}

func ecsRefs(nodes []*corev1.Node) []nodeRef {
	var out []nodeRef
	for _, n := range nodes {
		if r, ok := ecsRef(n); ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node < out[j].node })
	return out
}

func (g *gatherer) run(ctx context.Context, ks *kube.Snapshot) *Snapshot {
	g.snap = &Snapshot{
		Region:          g.s.region,
		Credential:      g.cred.kind,
		Instances:       map[string]*Instance{},
		Queried:         map[string]bool{},
		InstanceErrs:    map[string]*PartError{},
		VSwitches:       map[string]*VSwitch{},
		ZoneLookups:     map[string]*ZoneLookup{},
		SecurityGroups:  map[string]*SecurityGroup{},
		ResourceErrs:    map[string]*PartError{},
		OtherVSwitches:  map[string]*VSwitch{},
		ECI:             eciConfig(ks, g.s),
		OnPremCIDRs:     g.s.onPrem,
		RouteEntryQuota: g.s.routeEntryQuota,
		Expect:          g.s.expect,
		Errors:          map[Part]*PartError{},
	}
	refs := ecsRefs(ks.Nodes)
	var side sync.WaitGroup
	async := side.Go
	// Independent of the cluster: the leased line and the resolver.
	async(func() { g.leasedLine(ctx) })
	async(func() { g.resolver(ctx) })
	defer func() {
		side.Wait()
		g.eciVSwitchesElsewhere(ctx)
		g.snap.Calls = int(g.c.calls.Load())
	}()
	var wg sync.WaitGroup
	startVPC := func(id string) { wg.Go(func() { g.vpcChain(ctx, id) }) }
	speculated := ""
	if g.s.vpcID != "" {
		g.snap.VPCID, g.snap.VPCFrom = g.s.vpcID, "configured"
		startVPC(g.s.vpcID)
	} else {
		// The VPC chain is the longest: start it with the VPC of the first
		// instance found in the region instead of waiting for every batch.
		// Discovery below confirms it (or, when the nodes span two VPCs,
		// the speculative part is dropped).
		var once sync.Once
		g.onVPC = func(id string) {
			once.Do(func() {
				speculated = id
				startVPC(id)
			})
		}
	}
	g.instances(ctx, refs)
	async(func() { g.securityGroups(ctx, refs) })
	if g.s.vpcID == "" {
		g.mu.Lock()
		g.onVPC = nil
		g.mu.Unlock()
		id, how, err := g.discoverVPC(refs)
		if err != nil {
			// Drop what the speculative chain read for one of the VPCs.
			wg.Wait()
			g.mu.Lock()
			g.snap.VPC, g.snap.VSwitches, g.snap.Tables = nil, map[string]*VSwitch{}, nil
			delete(g.snap.Errors, PartVSwitches)
			delete(g.snap.Errors, PartTables)
			g.snap.Errors[PartVPC] = err
			g.mu.Unlock()
		} else {
			g.mu.Lock()
			g.snap.VPCID, g.snap.VPCFrom = id, how
			g.mu.Unlock()
			if id != speculated {
				startVPC(id)
			}
		}
	}
	g.mu.Lock()
	id, vpcFailed := g.snap.VPCID, g.snap.Errors[PartVPC] != nil
	g.mu.Unlock()
	if id != "" && !vpcFailed {
		async(func() { g.zones(ctx, id) })
	}
	wg.Wait()
	// The side chains may still write the snapshot; the VPC chain is done.
	g.mu.Lock()
	defer g.mu.Unlock()
	sort.Slice(g.snap.Tables, func(i, j int) bool {
		a, b := g.snap.Tables[i], g.snap.Tables[j]
		if (a.Type == "System") != (b.Type == "System") {
			return a.Type == "System"
		}
		return a.ID < b.ID
	})
	return g.snap
}

// readList reads one PageNumber/PageSize list to its end with fetch and
// stores it with set (under the lock), or records why part failed.
func readList[T any](ctx context.Context, g *gatherer, part Part, action string, fetch func(ctx context.Context, n int) ([]T, int, error), set func([]T)) {
	list, err := pagesByNumber(ctx, g.c, action, fetch)
	g.mu.Lock()
	defer g.mu.Unlock()
	set(list)
	if err != nil {
		g.snap.Errors[part] = g.partErr(part, action, err)
	}
}

// partErr records why a part failed, naming the RAM action.
func (g *gatherer) partErr(part Part, action string, err error) *PartError {
	e := &PartError{Part: part, Action: action, Err: err, Permission: isPermission(err), Credential: isCredential(err)}
	if e.Credential {
		e.Err = fmt.Errorf("the credential (%s) was rejected: %w", g.cred.kind, err)
	}
	return e
}

// instances looks up every instance the ECS nodes name: by ID, 100 per
// call, each region in parallel. IDs not found are then told apart:
// DescribeInstances answers a caller without the permission with an empty
// list (documented), so a DryRun of the same call decides — DryRunOperation
// means the caller may list instances and the instance is really absent;
// a permission error means the empty list meant nothing. IDs whose
// providerID names another region than the configured one are also looked
// up in the configured region, to say where they are.
func (g *gatherer) instances(ctx context.Context, refs []nodeRef) {
	byRegion := map[string][]string{}
	for _, r := range refs {
		region := r.region
		if region == "" {
			region = g.s.region
		}
		if !g.snap.Queried[r.instance] {
			g.snap.Queried[r.instance] = true
			byRegion[region] = append(byRegion[region], r.instance)
		}
	}
	g.lookup(ctx, byRegion)

	missing := map[string][]string{}
	elsewhere := map[string][]string{}
	for region, ids := range byRegion {
		for _, id := range ids {
			if g.snap.Instances[id] != nil || g.snap.InstanceErrs[id] != nil {
				continue
			}
			missing[region] = append(missing[region], id)
			if region != g.s.region {
				elsewhere[g.s.region] = append(elsewhere[g.s.region], id)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	var wg sync.WaitGroup
	for region, ids := range missing {
		wg.Go(func() { g.dryRunInstances(ctx, region, ids) })
	}
	wg.Go(func() { g.lookup(ctx, elsewhere) })
	wg.Wait()
	// An instance found in the configured region is no longer in doubt.
	for id := range g.snap.Instances {
		delete(g.snap.InstanceErrs, id)
	}
}

// lookup reads instances by ID, in batches of 100, all batches in
// parallel.
func (g *gatherer) lookup(ctx context.Context, byRegion map[string][]string) {
	var wg sync.WaitGroup
	for region, ids := range byRegion {
		sort.Strings(ids)
		for batch := range slices.Chunk(ids, maxInstanceIDs) {
			wg.Go(func() {
				found, err := pagesByToken(ctx, g.c, actionDescribeInstances, func(ctx context.Context, token string) ([]Instance, string, error) {
					p, err := g.ecs.describeInstances(ctx, instanceQuery{Region: region, IDs: batch, NextToken: token, MaxResults: maxInstanceIDs})
					return p.Instances, p.NextToken, err
				})
				g.mu.Lock()
				defer g.mu.Unlock()
				for i := range found {
					in := found[i]
					g.snap.Instances[in.ID] = &in
					if g.onVPC != nil && in.Region == g.s.region && in.VPCID != "" {
						g.onVPC(in.VPCID)
					}
				}
				if err != nil {
					pe := g.partErr(PartInstances, actionDescribeInstances, err)
					for _, id := range batch {
						if g.snap.Instances[id] == nil {
							g.snap.InstanceErrs[id] = pe
						}
					}
				}
			})
		}
	}
	wg.Wait()
}

func (g *gatherer) dryRunInstances(ctx context.Context, region string, ids []string) {
	err := g.c.do(ctx, actionDescribeInstances, func(ctx context.Context) error {
		_, err := g.ecs.describeInstances(ctx, instanceQuery{Region: region, IDs: ids[:min(len(ids), maxInstanceIDs)], MaxResults: maxInstanceIDs, DryRun: true})
		return err
	})
	var ae *APIError
	if err == nil || (errors.As(err, &ae) && ae.Code == codeDryRunPassed) {
		return // allowed: the instances are really absent
	}
	pe := g.partErr(PartInstances, actionDescribeInstances, err)
	if pe.Permission {
		pe.Err = fmt.Errorf("DescribeInstances answered an empty list for %d instance(s), and its DryRun says why: %w", len(ids), err)
	} else {
		pe.Err = fmt.Errorf("instances not in the answer, and the DryRun that would tell a missing permission apart failed: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		g.snap.InstanceErrs[id] = pe
	}
}

// discoverVPC is the one VPC of the ECS nodes' instances in the
// configured region.
func (g *gatherer) discoverVPC(refs []nodeRef) (string, string, *PartError) {
	setVPC := fmt.Sprintf("Set cloud.vpcId to the cluster's VPC (VPC console > VPCs, region %s; or: aliyun vpc DescribeVpcs --RegionId %s).", g.s.region, g.s.region)
	fail := func(err error) (string, string, *PartError) {
		return "", "", &PartError{Part: PartVPC, Action: actionDescribeInstances, Err: err, Remedy: setVPC}
	}
	if len(refs) == 0 {
		return fail(errors.New("the cluster has no ECS node to discover its VPC from; set cloud.vpcId"))
	}
	byVPC := map[string][]string{}
	for _, r := range refs {
		if in := g.snap.Instances[r.instance]; in != nil && in.Region == g.s.region && in.VPCID != "" {
			byVPC[in.VPCID] = append(byVPC[in.VPCID], r.node)
		}
	}
	switch len(byVPC) {
	case 0:
		pe := &PartError{Part: PartVPC, Action: actionDescribeInstances}
		why := "none was found"
		pe.Remedy = setVPC
		for _, r := range refs {
			if e := g.snap.InstanceErrs[r.instance]; e != nil {
				why, pe.Permission, pe.Credential, pe.Remedy = "they could not be read: "+e.Error(), e.Permission, e.Credential, e.Fix()
				break
			}
		}
		pe.Err = fmt.Errorf("cannot discover the cluster's VPC from the ECS nodes' instances in %s (%s); set cloud.vpcId", g.s.region, why)
		return "", "", pe
	case 1:
		for id, nodes := range byVPC {
			return id, fmt.Sprintf("discovered from the instances of %d ECS node(s)", len(nodes)), nil
		}
	}
	ids := make([]string, 0, len(byVPC))
	for id := range byVPC {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s (%s)", id, diag.JoinFirst(byVPC[id], 5))
	}
	return fail(fmt.Errorf("the ECS nodes' instances are in %d VPCs: %s; set cloud.vpcId to the cluster's VPC", len(ids), strings.Join(parts, ", ")))
}

// vpcChain reads the VPC, its vSwitches, and its route tables with their
// entries; the three lists in parallel, the entries of each table in
// parallel.
func (g *gatherer) vpcChain(ctx context.Context, vpcID string) {
	parallel(func() { g.readVPC(ctx, vpcID) }, func() { g.vswitches(ctx, vpcID) }, func() { g.tables(ctx, vpcID) })
}

// parallel runs fs concurrently and returns when all have.
func parallel(fs ...func()) {
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(f)
	}
	wg.Wait()
}

// each runs f for every item concurrently and returns when all have.
func each[T any](items []T, f func(T)) {
	var wg sync.WaitGroup
	for _, x := range items {
		wg.Go(func() { f(x) })
	}
	wg.Wait()
}

func (g *gatherer) readVPC(ctx context.Context, vpcID string) {
	q := listQuery{Region: g.s.region, VPCID: vpcID, PageNumber: 1, PageSize: maxPageSize}
	vpcs, err := pagesByNumber(ctx, g.c, actionDescribeVpcs, func(ctx context.Context, n int) ([]VPC, int, error) {
		q.PageNumber = n
		p, err := g.vpc.describeVpcs(ctx, q)
		return p.VPCs, p.TotalCount, err
	})
	if err == nil && len(vpcs) == 0 {
		err = g.emptyList(ctx, actionDescribeVpcs, fmt.Errorf("VPC %s does not exist in %s", vpcID, g.s.region), func(ctx context.Context) error {
			_, err := g.vpc.describeVpcs(ctx, listQuery{Region: g.s.region, VPCID: vpcID, PageNumber: 1, PageSize: 1, DryRun: true})
			return err
		})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.snap.Errors[PartVPC] = g.partErr(PartVPC, actionDescribeVpcs, err)
		return
	}
	for i := range vpcs {
		if vpcs[i].ID == vpcID {
			g.snap.VPC = &vpcs[i]
		}
	}
}

func (g *gatherer) vswitches(ctx context.Context, vpcID string) {
	q := listQuery{Region: g.s.region, VPCID: vpcID, PageSize: maxPageSize}
	list, err := pagesByNumber(ctx, g.c, actionDescribeVSwitches, func(ctx context.Context, n int) ([]VSwitch, int, error) {
		q.PageNumber = n
		p, err := g.vpc.describeVSwitches(ctx, q)
		return p.VSwitches, p.TotalCount, err
	})
	if err == nil && len(list) == 0 {
		err = g.emptyList(ctx, actionDescribeVSwitches, nil, func(ctx context.Context) error {
			_, err := g.vpc.describeVSwitches(ctx, listQuery{Region: g.s.region, VPCID: vpcID, PageNumber: 1, PageSize: 1, DryRun: true})
			return err
		})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.snap.Errors[PartVSwitches] = g.partErr(PartVSwitches, actionDescribeVSwitches, err)
		return
	}
	for i := range list {
		g.snap.VSwitches[list[i].ID] = &list[i]
	}
}

// emptyList decides what an empty list means, with a DryRun of the same
// action: a permission error says the list was empty because of the
// policy; DryRunOperation says it really is empty (absent: nil, or the
// given error).
func (g *gatherer) emptyList(ctx context.Context, action string, absent error, dry func(context.Context) error) error {
	err := g.c.do(ctx, action, dry)
	var ae *APIError
	if err == nil || (errors.As(err, &ae) && ae.Code == codeDryRunPassed) {
		return absent
	}
	if isPermission(err) {
		return fmt.Errorf("the list came back empty, and its DryRun says why: %w", err)
	}
	return absent
}

// routeTables lists the route tables q selects, every page.
func (g *gatherer) routeTables(ctx context.Context, q listQuery) ([]RouteTable, error) {
	q.PageSize = maxPageSize
	return pagesByNumber(ctx, g.c, actionDescribeRouteTableList, func(ctx context.Context, n int) ([]RouteTable, int, error) {
		q.PageNumber = n
		p, err := g.vpc.describeRouteTables(ctx, q)
		return p.Tables, p.TotalCount, err
	})
}

func (g *gatherer) tables(ctx context.Context, vpcID string) {
	list, err := g.routeTables(ctx, listQuery{Region: g.s.region, VPCID: vpcID})
	if err == nil && len(list) == 0 {
		// Every VPC has a system route table, so an empty list is a
		// policy that hides them, not an empty VPC.
		err = &PartError{Part: PartTables, Action: actionDescribeRouteTableList, Permission: true,
			Err: fmt.Errorf("%s listed no route table for %s, but every VPC has a system route table: the RAM policy hides them "+
				"(an Allow limited by resource or condition)", actionDescribeRouteTableList, vpcID)}
	}
	if err != nil {
		pe, ok := err.(*PartError)
		if !ok {
			pe = g.partErr(PartTables, actionDescribeRouteTableList, err)
		}
		g.mu.Lock()
		g.snap.Errors[PartTables] = pe
		g.mu.Unlock()
		return
	}
	tables := make([]*RouteTable, len(list))
	for i := range list {
		tables[i] = &list[i]
	}
	each(tables, func(t *RouteTable) { g.entries(ctx, t) })
	g.mu.Lock()
	g.snap.Tables = append(g.snap.Tables, tables...)
	g.mu.Unlock()
}

func (g *gatherer) entries(ctx context.Context, t *RouteTable) {
	list, err := pagesByToken(ctx, g.c, actionDescribeRouteEntryList, func(ctx context.Context, token string) ([]RouteEntry, string, error) {
		p, err := g.vpc.describeRouteEntries(ctx, entryQuery{Region: g.s.region, TableID: t.ID, NextToken: token, MaxResult: maxEntryResults})
		return p.Entries, p.NextToken, err
	})
	switch {
	case err != nil:
		t.EntriesErr = g.partErr(PartTables, actionDescribeRouteEntryList, fmt.Errorf("route table %s: %w", t.ID, err))
	case len(list) == 0 && t.AssociateType != "Gateway" && t.RouterType != "VBR":
		// A vSwitch route table always holds the system routes (vSwitch
		// CIDRs, 100.64.0.0/10).
		t.EntriesErr = &PartError{Part: PartTables, Action: actionDescribeRouteEntryList, Permission: true,
			Err: fmt.Errorf("%s listed no entry in route table %s, which holds at least the system routes: the RAM policy hides them", actionDescribeRouteEntryList, t.ID)}
	default:
		t.Entries = list
	}
}
