package probe

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func testPlan(t *testing.T) *pb.ProbePlan {
	t.Helper()
	c := &Config{
		DNS: DNSConfig{
			ResolvConf: "/etc/resolv.conf", OnPremZones: []string{"corp.example"}, OnPremResolvers: []string{"10.0.0.53"},
			Names: []dnsprobe.Name{{Name: "db.corp.example", Expect: []string{"10.1.2.3"}}, {Name: "ldap.corp.example"}},
		},
		Targets: []Target{{Name: "db", Address: "10.1.2.3:5432"}, {Name: "kubelet", Address: "10.0.1.1:10250"}},
	}
	p, err := c.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNarrowNeverWidens attacks ProbeService.Run: a caller who can reach the
// agent's port must not make it probe anything the operator did not
// configure, nor rewrite the expected answers, nor stretch its deadlines.
func TestNarrowNeverWidens(t *testing.T) {
	conf := testPlan(t)
	for _, tc := range []struct {
		name string
		req  *pb.ProbePlan
		want string
	}{
		{"new target", &pb.ProbePlan{Targets: []*pb.ProbeTarget{{Name: "scan", Address: "10.9.9.9:22"}}}, `targets: "10.9.9.9:22" is not in the agent's plan`},
		{"known name, other port", &pb.ProbePlan{Targets: []*pb.ProbeTarget{{Name: "db", Address: "10.1.2.3:22"}}}, `targets: "10.1.2.3:22" is not in the agent's plan`},
		{"target by host name", &pb.ProbePlan{Targets: []*pb.ProbeTarget{{Address: "db.corp.example:5432"}}}, `targets: "db.corp.example:5432" is not in the agent's plan`},
		{"new name", &pb.ProbePlan{Names: []*pb.ProbeName{{Name: "secret.corp.example"}}}, "names: secret.corp.example A is not in the agent's plan"},
		{"known name, other type", &pb.ProbePlan{Names: []*pb.ProbeName{{Name: "db.corp.example", Type: "TXT"}}}, "names: db.corp.example TXT is not in the agent's plan"},
		{"new resolver", &pb.ProbePlan{OnpremResolvers: []string{"10.9.9.9"}}, `onprem_resolvers: "10.9.9.9:53" is not in the agent's plan`},
		{"bad resolver", &pb.ProbePlan{VpcResolvers: []string{"dns.example"}}, `vpc_resolvers: "dns.example" is not an address`},
		{"other resolv.conf", &pb.ProbePlan{ResolvConf: "/proc/self/environ"}, `resolv_conf "/proc/self/environ" is not the configured`},
		{"other metadata URL", &pb.ProbePlan{MetadataUrl: "http://10.9.9.9/"}, `metadata_url "http://10.9.9.9/" is not the configured one`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Narrow(conf, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Narrow = %v, %v; want an error containing %q", got, err, tc.want)
			}
		})
	}
}

func TestNarrowKeepsOperatorsChoices(t *testing.T) {
	conf := testPlan(t)
	if got, err := Narrow(conf, nil); err != nil || !proto.Equal(got, conf) {
		t.Fatalf("empty request: %v, %v", got, err)
	}
	if got, err := Narrow(conf, &pb.ProbePlan{}); err != nil || !proto.Equal(got, conf) {
		t.Fatalf("zero request: %v, %v", got, err)
	}
	req := &pb.ProbePlan{
		Names:          []*pb.ProbeName{{Name: "DB.corp.example", Expect: []string{"6.6.6.6"}}},
		Targets:        []*pb.ProbeTarget{{Name: "renamed", Address: "10.1.2.3:5432"}},
		DnsTimeout:     durationpb.New(time.Hour),
		ConnectTimeout: durationpb.New(time.Second),
		Concurrency:    100000,
	}
	got, err := Narrow(conf, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Names) != 1 || got.Names[0].Expect[0] != "10.1.2.3" {
		t.Errorf("the caller rewrote the expected answer: %v", got.Names)
	}
	if len(got.Targets) != 1 || got.Targets[0].Name != "db" {
		t.Errorf("target not taken from the plan: %v", got.Targets)
	}
	if got.DnsTimeout.AsDuration() != 2*time.Second || got.ConnectTimeout.AsDuration() != time.Second || got.Concurrency != conf.Concurrency {
		t.Errorf("deadlines: dns %v connect %v concurrency %d", got.DnsTimeout.AsDuration(), got.ConnectTimeout.AsDuration(), got.Concurrency)
	}
	if got.ResolvConf != conf.ResolvConf || got.MetadataUrl != "" {
		t.Errorf("resolv.conf %q metadata %q", got.ResolvConf, got.MetadataUrl)
	}
	if len(got.VpcResolvers) != 0 {
		t.Errorf("a narrowed plan left out the VPC resolvers but got %v", got.VpcResolvers)
	}
}
