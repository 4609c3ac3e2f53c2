package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"

	"github.com/vnodediag/vnodediag/dnsprobe"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Narrow returns the plan a ProbeService.Run caller asked for, checked
// against the agent's configured plan: a caller may leave probes out and
// shorten deadlines, never add a resolver, a name, a target or a URL. Without
// this rule the agent would be an open probe (a port scanner inside the VPC)
// for anyone who can reach its port. An empty request is the configured plan.
func Narrow(configured, req *pb.ProbePlan) (*pb.ProbePlan, error) {
	if req == nil || proto.Size(req) == 0 {
		return proto.Clone(configured).(*pb.ProbePlan), nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	out := proto.Clone(req).(*pb.ProbePlan)
	if out.ResolvConf == "" {
		out.ResolvConf = configured.ResolvConf
	} else if out.ResolvConf != configured.ResolvConf {
		add("resolv_conf %q is not the configured %q", out.ResolvConf, configured.ResolvConf)
	}
	if out.MetadataUrl != "" && strings.TrimSuffix(out.MetadataUrl, "/") != configured.MetadataUrl {
		add("metadata_url %q is not the configured one", out.MetadataUrl)
	}
	for _, s := range []struct {
		field string
		got   *[]string
		known []string
		norm  func(string) (string, error)
	}{
		{"vpc_resolvers", &out.VpcResolvers, configured.VpcResolvers, hostPortErr},
		{"onprem_resolvers", &out.OnpremResolvers, configured.OnpremResolvers, hostPortErr},
		{"onprem_zones", &out.OnpremZones, configured.OnpremZones, zoneErr},
		{"private_zones", &out.PrivateZones, configured.PrivateZones, zoneErr},
	} {
		for i, v := range *s.got {
			n, err := s.norm(v)
			switch {
			case err != nil:
				add("%s: %q is not an address or zone", s.field, v)
			case !slices.Contains(s.known, n):
				add("%s: %q is not in the agent's plan", s.field, n)
			default:
				(*s.got)[i] = n
			}
		}
	}
	known := map[string]*pb.ProbeName{}
	for _, n := range configured.Names {
		known[n.Name+" "+n.Type] = n
	}
	for i, n := range out.Names {
		name, typ := dns.Fqdn(strings.ToLower(n.Name)), strings.ToUpper(n.Type)
		if typ == "" {
			typ = "A"
		}
		k, ok := known[name+" "+typ]
		if !ok {
			add("names: %s %s is not in the agent's plan", strings.TrimSuffix(name, "."), typ)
			continue
		}
		// The expected answer is the operator's, not the caller's.
		out.Names[i] = proto.Clone(k).(*pb.ProbeName)
	}
	targets := map[string]string{}
	for _, t := range configured.Targets {
		targets[t.Address] = t.Name
	}
	for i, t := range out.Targets {
		a, err := targetAddr(t.Address)
		name, ok := targets[a]
		if err != nil || !ok {
			add("targets: %q is not in the agent's plan", t.Address)
			continue
		}
		out.Targets[i] = &pb.ProbeTarget{Name: name, Address: a}
	}
	if out.DnsTimeout == nil || out.DnsTimeout.AsDuration() <= 0 || out.DnsTimeout.AsDuration() > configured.DnsTimeout.AsDuration() {
		out.DnsTimeout = configured.DnsTimeout
	}
	if out.ConnectTimeout == nil || out.ConnectTimeout.AsDuration() <= 0 || out.ConnectTimeout.AsDuration() > configured.ConnectTimeout.AsDuration() {
		out.ConnectTimeout = configured.ConnectTimeout
	}
	if out.MetadataTimeout == nil || out.MetadataTimeout.AsDuration() <= 0 || out.MetadataTimeout.AsDuration() > configured.MetadataTimeout.AsDuration() {
		out.MetadataTimeout = configured.MetadataTimeout
	}
	if out.Concurrency <= 0 || out.Concurrency > configured.Concurrency {
		out.Concurrency = configured.Concurrency
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func hostPortErr(s string) (string, error) { return dnsprobe.HostPort(s) }

func zoneErr(s string) (string, error) {
	if _, ok := dns.IsDomainName(s); !ok || s == "" {
		return "", fmt.Errorf("%q is not a domain name", s)
	}
	return dns.Fqdn(strings.ToLower(s)), nil
}
