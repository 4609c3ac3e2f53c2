package cloud

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/test/cloudlab"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// BenchmarkCloudGather is the scale target of the cloud source: a VPC with
// 5 route tables of 500 entries, 1,000 ECS instances, 2,000 nodes (1,000
// ECS, 1,000 on-prem), the leased line (a VBR with 200 learned routes, two
// BGP peers), 300 PrivateZone zones bound to the VPC with 30 forwarding
// rules, the nodes' security group with 1,500 rules; 50 ms latency on every
// call, the VPC discovered from the instances (the longest dependent
// chain). It reports, beside the time of a gather, the physical limit —
// the larger of (the longest chain of dependent paged calls x 50 ms) and
// (the calls / the QPS limit) — and the ratio of the two, which must stay
// at or below 1.25. Run with `make bench-cloud`.
func BenchmarkCloudGather(b *testing.B) {
	const latency = 50 * time.Millisecond
	spec := cloudlab.ScaleSpec{Tables: 5, EntriesPerTable: 500, Instances: 1000, VBREntries: 200, Zones: 300, GroupRules: 1500}
	for _, qps := range []float64{-1, 20} {
		name := "qps=unlimited"
		if qps > 0 {
			name = fmt.Sprintf("qps=%g", qps)
		}
		b.Run(name, func(b *testing.B) {
			d, ds := cloudlab.Scale(spec)
			srv, err := cloudlab.Start(d)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			srv.Latency = latency
			k := srv.Key()
			for _, e := range credentialEnv {
				b.Setenv(e, "")
			}
			b.Setenv("HOME", b.TempDir())
			b.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
			b.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", k.ID)
			b.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", k.Secret)

			nodes := make([]*corev1.Node, 0, 2*spec.Instances)
			for i := 0; i < spec.Instances; i++ {
				nodes = append(nodes,
					kubelab.ECSNode(fmt.Sprintf("ecs-%04d", i), ds.Region+"."+cloudlab.ScaleInstance(i), cloudlab.ScalePodCIDR(i), d.Instances[i].PrivateIP),
					kubelab.OnPremNode(fmt.Sprintf("dc-%04d", i), fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256), fmt.Sprintf("172.31.%d.%d", i/250, i%250+1)))
			}
			cfg := Config{RegionID: ds.Region, QPS: qps, Endpoints: Endpoints{ECS: srv.Endpoint("ecs"), VPC: srv.Endpoint("vpc"), PVTZ: srv.Endpoint("pvtz")}}
			p, err := NewProvider(&cfg, testEnv())
			if err != nil {
				b.Fatal(err)
			}
			ks := &kube.Snapshot{Nodes: nodes}
			var snap *Snapshot
			b.ResetTimer()
			for range b.N {
				srv.ResetCalls()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				s, err := gatherFor(ctx, p, ks)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				snap = s
			}
			b.StopTimer()
			if len(snap.Errors) > 0 || len(snap.InstanceErrs) > 0 || len(snap.ResourceErrs) > 0 || len(snap.Instances) != spec.Instances || len(snap.Tables) != spec.Tables ||
				len(snap.Zones) != spec.Zones || len(snap.SecurityGroups) != 1 || len(snap.VBRs) != 1 || snap.VBRs[0].Table == nil {
				b.Fatalf("incomplete snapshot: %v %d instance errors, %v, %d instances, %d tables, %d zones", snap.Errors, len(snap.InstanceErrs), snap.ResourceErrs, len(snap.Instances), len(snap.Tables), len(snap.Zones))
			}
			chain := longestChain(snap)
			calls := len(srv.Calls())
			limit := time.Duration(chain) * latency
			if qps > 0 {
				limit = max(limit, time.Duration(float64(calls)/qps*float64(time.Second)))
			}
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(calls), "calls")
			b.ReportMetric(float64(chain), "chain")
			b.ReportMetric(float64(limit.Milliseconds()), "limit-ms")
			b.ReportMetric(float64(per.Milliseconds()), "gather-ms")
			b.ReportMetric(float64(per)/float64(limit), "ratio")
		})
	}
}

// pages is the calls a list of n items takes at size per page (an empty
// list is one call too).
func pages(n, size int) int { return max(1, (n+size-1)/size) }

// longestChain counts the dependent calls of a discovered-VPC gather, the
// longest of its parallel chains: instances (all batches at once), then
// the route table list, then the longest run of entry pages of one table;
// the VBR list, the VBR's table, its entry pages; the BGP peers, the BGP
// networks, the resolver endpoints and rules (each its own chain);
// instances, then the zones bound to the VPC; instances, then a group's
// rule pages.
func longestChain(s *Snapshot) int {
	entries := 0
	for _, t := range s.Tables {
		entries = max(entries, pages(len(t.Entries), maxEntryResults))
	}
	vbrEntries := 0
	for _, v := range s.VBRs {
		if v.Table != nil {
			vbrEntries = max(vbrEntries, pages(len(v.Table.Entries), maxEntryResults))
		}
	}
	rules := 0
	for _, g := range s.SecurityGroups {
		rules = max(rules, pages(len(g.Rules), maxRuleResults))
	}
	return max(
		1+pages(len(s.Tables), maxPageSize)+entries,
		pages(len(s.VBRs), maxPageSize)+1+vbrEntries,
		pages(len(s.BGPPeers), maxPageSize), pages(len(s.BGPNetworks), maxPageSize),
		pages(len(s.Endpoints), maxPvtzPageSize), pages(len(s.Rules), maxPvtzPageSize),
		1+pages(len(s.Zones), maxPvtzPageSize),
		1+rules,
	)
}
