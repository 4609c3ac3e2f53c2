package dnsprobe

import (
	"strings"
	"testing"

	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func mustParse(t *testing.T, src string) *corefile.Corefile {
	t.Helper()
	cf, err := corefile.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

const goodCorefile = `corp.example:53 {
    forward . 10.0.0.53
}
svc.cloud.internal:53 {
    forward . 10.1.0.10
}
.:53 {
    kubernetes cluster.local in-addr.arpa ip6.arpa
    forward . /etc/resolv.conf
}
`

func TestEvalCoreDNSForward(t *testing.T) {
	tests := []struct {
		name     string
		corefile string
		mutate   func(*Config)
		// status per zone: corp.example, then svc.cloud.internal
		status []pb.Status
		frags  []string
	}{
		{"both zones forwarded", goodCorefile, nil, []pb.Status{pb.Status_PASS, pb.Status_PASS}, []string{"CoreDNS forwards on-prem zone corp.example to 10.0.0.53:53"}},
		{"PrivateZone through the on-prem resolver is fine", `.:53 {
    kubernetes cluster.local
    forward . 10.0.0.53:53
}`, nil, []pb.Status{pb.Status_PASS, pb.Status_PASS}, nil},
		{"only resolv.conf", `.:53 {
    kubernetes cluster.local
    forward . /etc/resolv.conf
}`, nil, []pb.Status{pb.Status_WARN, pb.Status_WARN}, []string{"resolv.conf", "corp.example:53 {\n    errors\n    cache 30\n    forward . 10.0.0.53:53\n}"}},
		{"wrong target", `corp.example:53 {
    forward . 10.0.0.99
}
svc.cloud.internal:53 {
    forward . 10.1.0.10 8.8.8.8
}
.:53 {
    forward . 10.0.0.53
}`, nil, []pb.Status{pb.Status_FAIL, pb.Status_FAIL}, []string{"forwards on-prem zone corp.example to 10.0.0.99:53, which is not a configured resolver", "forwards PrivateZone svc.cloud.internal to 8.8.8.8:53", "svc.cloud.internal:53 {\n    errors\n    cache 30\n    forward . 10.1.0.10:53\n}"}},
		{"block without forward", `corp.example:53 {
    log
}
svc.cloud.internal:53 {
    hosts {
        10.255.2.20 api.svc.cloud.internal
    }
}
.:53 {
    forward . 10.0.0.53
}`, nil, []pb.Status{pb.Status_FAIL, pb.Status_FAIL}, []string{"block corp.example:53 (line 1) has no forward for it"}},
		{"no block on port 53", `.:5353 {
    forward . 10.0.0.53
}`, nil, []pb.Status{pb.Status_FAIL, pb.Status_FAIL}, []string{"no server block for on-prem zone corp.example on port 53"}},
		{"excepted from the catch-all", `.:53 {
    forward . 10.0.0.53 {
        except corp.example
    }
}`, nil, []pb.Status{pb.Status_FAIL, pb.Status_PASS}, []string{"has no forward for it"}},
		{"nothing to compare with", goodCorefile, func(c *Config) {
			c.OnPremResolvers, c.Forwarders = nil, nil
			c.CloudResolvers = []Resolver{{Name: "x", Address: "100.100.2.136"}}
		},
			[]pb.Status{pb.Status_SKIP, pb.Status_SKIP}, []string{"expected forward target is unknown"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			rs := evalCoreDNSForward(canon(c), mustParse(t, tc.corefile), nil)
			if len(rs) != len(tc.status) {
				t.Fatalf("%d results, want %d", len(rs), len(tc.status))
			}
			var all strings.Builder
			for i, r := range rs {
				all.WriteString(r.Summary + "\n" + r.Remediation + "\n")
				if r.Status != tc.status[i] {
					t.Errorf("result %d: %s %s, want %s", i, r.Status, r.Summary, tc.status[i])
				}
			}
			for _, f := range tc.frags {
				if !strings.Contains(all.String(), f) {
					t.Errorf("missing %q in\n%s", f, all.String())
				}
			}
		})
	}
}

func TestEvalClusterDomainOverlap(t *testing.T) {
	tests := []struct {
		name     string
		corefile string // "" for no ConfigMap
		mutate   func(*Config)
		status   []pb.Status
		frags    []string
	}{
		{"disjoint", goodCorefile, nil, []pb.Status{pb.Status_PASS}, []string{"cluster domain cluster.local does not overlap"}},
		{"no ConfigMap: default", "", nil, []pb.Status{pb.Status_PASS}, nil},
		{"no ConfigMap: configured domain", "", func(c *Config) { c.ClusterDomain = "corp.example" }, []pb.Status{pb.Status_FAIL}, []string{"cluster domain corp.example equals the on-prem zone corp.example"}},
		{"custom domain contains the on-prem zone", ".:53 {\n kubernetes example in-addr.arpa\n}\n", nil, []pb.Status{pb.Status_FAIL}, []string{"cluster domain example contains the on-prem zone corp.example"}},
		{"custom domain inside a PrivateZone", ".:53 {\n kubernetes k8s.svc.cloud.internal\n}\n", nil, []pb.Status{pb.Status_FAIL}, []string{"lies inside the PrivateZone svc.cloud.internal", "rename the PrivateZone"}},
		{"PrivateZone named cluster.local", goodCorefile, func(c *Config) {
			c.PrivateZones = []string{"cluster.local", "svc.cluster.local"}
			c.PrivateZoneNames = nil
		},
			[]pb.Status{pb.Status_FAIL, pb.Status_FAIL}, []string{"equals the PrivateZone cluster.local", "contains the PrivateZone svc.cluster.local"}},
		{"kubernetes plugin without zones uses the block's", "k8s.corp.example:53 {\n kubernetes\n}\n", nil, []pb.Status{pb.Status_FAIL}, []string{"k8s.corp.example lies inside the on-prem zone corp.example"}},
		{"no zones configured", goodCorefile, func(c *Config) { c.PrivateZones, c.OnPremZones, c.PrivateZoneNames, c.OnPremNames = nil, nil, nil, nil }, []pb.Status{pb.Status_SKIP}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			var cf *corefile.Corefile
			if tc.corefile != "" {
				cf = mustParse(t, tc.corefile)
			}
			rs := evalClusterDomainOverlap(canon(c), cf)
			if len(rs) != len(tc.status) {
				t.Fatalf("%d results, want %d: %v", len(rs), len(tc.status), rs)
			}
			var all strings.Builder
			for i, r := range rs {
				all.WriteString(r.Summary + "\n" + r.Remediation + "\n")
				if r.Status != tc.status[i] {
					t.Errorf("result %d: %s %s, want %s", i, r.Status, r.Summary, tc.status[i])
				}
			}
			for _, f := range tc.frags {
				if !strings.Contains(all.String(), f) {
					t.Errorf("missing %q in\n%s", f, all.String())
				}
			}
		})
	}
}

// TestEvalCoreDNSForwardNodeResolvConf: a forward to resolv.conf is judged
// with the nameservers the host source read on this node.
func TestEvalCoreDNSForwardNodeResolvConf(t *testing.T) {
	cf := mustParse(t, ".:53 {\n    forward . /etc/resolv.conf\n}\n")
	for _, tc := range []struct {
		name string
		node *nodeResolvConf
		want string
	}{
		{"not read", nil, "WARN,WARN"},
		{"configured", &nodeResolvConf{path: "/etc/resolv.conf", targets: []string{"10.0.0.53:53"}}, "PASS,PASS"},
		{"inbound endpoint only", &nodeResolvConf{path: "/etc/resolv.conf", targets: []string{"10.1.0.10:53"}}, "FAIL,PASS"},
		{"public resolver", &nodeResolvConf{path: "/etc/resolv.conf", targets: []string{"10.0.0.53:53", "8.8.8.8:53"}}, "FAIL,FAIL"},
		{"unreadable", &nodeResolvConf{path: "/etc/resolv.conf", err: "no such file"}, "WARN,WARN"},
	} {
		rs := evalCoreDNSForward(canon(testConfig()), cf, tc.node)
		var got []string
		for _, r := range rs {
			got = append(got, r.Status.String())
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s: %v", tc.name, rs)
		}
	}
}
