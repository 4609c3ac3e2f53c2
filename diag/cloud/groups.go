package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/vnodediag/vnodediag/diag/kube"
)

// PartGroupList is the security group list (types), which only enriches
// what DescribeSecurityGroupAttribute answers.
const PartGroupList Part = "security group list"

// eciConfig is what ECI pods use: the configured IDs, else the eci-profile
// ConfigMap's securityGroupId and vSwitchIds (comma-separated).
func eciConfig(ks *kube.Snapshot, s *settings) ECIConfig {
	var c ECIConfig
	var from []string
	profile := ks.ECIProfile
	if len(s.eciGroups) > 0 {
		c.SecurityGroups = s.eciGroups
		from = append(from, "cloud.eciSecurityGroupIds")
	} else if profile != nil && profile.SecurityGroupID != "" {
		c.SecurityGroups = splitIDs(profile.SecurityGroupID)
		from = append(from, "ConfigMap kube-system/eci-profile")
	}
	if len(s.eciVSwitches) > 0 {
		c.VSwitches = s.eciVSwitches
		from = append(from, "cloud.eciVSwitchIds")
	} else if profile != nil && len(profile.VSwitchIDs) > 0 {
		c.VSwitches = profile.VSwitchIDs
		if !slices.Contains(from, "ConfigMap kube-system/eci-profile") {
			from = append(from, "ConfigMap kube-system/eci-profile")
		}
	}
	c.From = strings.Join(from, " and ")
	c.Err = ks.PartErrors[kube.PartECIProfile]
	return c
}

func splitIDs(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

// securityGroups reads the groups of the ECS nodes' instances and of ECI:
// their list (for the group types) and, per group, its inbound rules, all
// in parallel.
func (g *gatherer) securityGroups(ctx context.Context, refs []nodeRef) {
	g.mu.Lock()
	set := map[string]bool{}
	for _, r := range refs {
		if in := g.snap.Instances[r.instance]; in != nil {
			for _, id := range in.SecurityGroupIDs {
				set[id] = true
			}
		}
	}
	for _, id := range g.snap.ECI.SecurityGroups {
		set[id] = true
	}
	g.mu.Unlock()
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return
	}
	types := map[string]string{}
	groups := make([]*SecurityGroup, len(ids))
	parallel(func() {
		each(slices.Collect(slices.Chunk(ids, maxGroupIDs)), func(batch []string) {
			list, err := pagesByToken(ctx, g.c, actionDescribeSecurityGroups, func(ctx context.Context, token string) ([]SecurityGroup, string, error) {
				p, err := g.ecs.describeSecurityGroups(ctx, groupQuery{Region: g.s.region, IDs: batch, NextToken: token, MaxResults: maxGroupIDs})
				return p.Groups, p.NextToken, err
			})
			g.mu.Lock()
			defer g.mu.Unlock()
			for _, sg := range list {
				types[sg.ID] = sg.Type
			}
			if err != nil {
				g.snap.Errors[PartGroupList] = g.partErr(PartGroupList, actionDescribeSecurityGroups, err)
			}
		})
	}, func() {
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() { groups[i] = g.groupRules(ctx, id) })
		}
		wg.Wait()
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, sg := range groups {
		if sg != nil {
			sg.Type = types[sg.ID]
			g.snap.SecurityGroups[sg.ID] = sg
		}
	}
}

// groupRules reads one group's inbound rules, page by page; nil when it
// could not be read (ResourceErrs says why).
func (g *gatherer) groupRules(ctx context.Context, id string) *SecurityGroup {
	var sg *SecurityGroup
	_, err := pagesByToken(ctx, g.c, actionDescribeSecurityGroupAttribute, func(ctx context.Context, token string) ([]SGRule, string, error) {
		p, err := g.ecs.describeSecurityGroupAttribute(ctx, ruleQuery{Region: g.s.region, GroupID: id, NextToken: token, MaxResults: maxRuleResults})
		if err == nil {
			if sg == nil {
				attrs := p.Group
				attrs.Rules = nil
				sg = &attrs
			}
			sg.Rules = append(sg.Rules, p.Group.Rules...)
		}
		return nil, p.NextToken, err
	})
	if err != nil {
		pe := g.partErr(PartGroupList, actionDescribeSecurityGroupAttribute, fmt.Errorf("security group %s: %w", id, err))
		var ae *APIError
		pe.Absent = errors.As(err, &ae) && ae.Code == "InvalidSecurityGroupId.NotFound"
		g.mu.Lock()
		g.snap.ResourceErrs[id] = pe
		g.mu.Unlock()
		return nil
	}
	return sg
}

// eciVSwitchesElsewhere looks up the ECI vSwitches that are not in the
// cluster's VPC, to say where they are. It runs after the VPC's vSwitches
// were read, and only for those missing from them.
func (g *gatherer) eciVSwitchesElsewhere(ctx context.Context) {
	if g.snap.Errors[PartVSwitches] != nil || g.snap.VPCID == "" {
		return
	}
	var elsewhere []string
	for _, id := range g.snap.ECI.VSwitches {
		if g.snap.VSwitches[id] == nil {
			elsewhere = append(elsewhere, id)
		}
	}
	each(elsewhere, func(id string) {
		q := listQuery{Region: g.s.region, VSwitchID: id, PageNumber: 1, PageSize: maxPageSize}
		var found []VSwitch
		err := g.c.do(ctx, actionDescribeVSwitches, func(ctx context.Context) error {
			p, err := g.vpc.describeVSwitches(ctx, q)
			found = p.VSwitches
			return err
		})
		if err == nil && len(found) == 0 {
			q.DryRun = true
			err = g.emptyList(ctx, actionDescribeVSwitches, nil, func(ctx context.Context) error {
				_, err := g.vpc.describeVSwitches(ctx, q)
				return err
			})
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		switch {
		case err != nil:
			g.snap.ResourceErrs[id] = g.partErr(PartVSwitches, actionDescribeVSwitches, fmt.Errorf("vSwitch %s: %w", id, err))
		case len(found) > 0:
			g.snap.OtherVSwitches[id] = &found[0]
		}
	})
}
