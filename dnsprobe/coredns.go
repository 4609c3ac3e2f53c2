package dnsprobe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/miekg/dns"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/host"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// parseCoreDNS parses the Corefile of the kube-system/coredns ConfigMap. A
// nil ConfigMap gives a nil Corefile and no error.
func parseCoreDNS(cm *corev1.ConfigMap) (*corefile.Corefile, error) {
	if cm == nil {
		return nil, nil
	}
	src, ok := cm.Data["Corefile"]
	if !ok {
		return nil, fmt.Errorf("configmap %s/%s: no Corefile key", cm.Namespace, cm.Name)
	}
	cf, err := corefile.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("configmap %s/%s: Corefile: %w", cm.Namespace, cm.Name, err)
	}
	return cf, nil
}

func coreDNSInputs(in *diag.Inputs) (*kube.Snapshot, *Observations, *pb.Result) {
	snap, obs := kube.Source.Get(in), Source.Get(in)
	if err := snap.PartErrors[kube.PartCoreDNS]; err != nil {
		return nil, nil, coreDNSUnread(err)
	}
	return snap, obs, nil
}

func coreDNSUnread(err error) *pb.Result {
	res := diag.Errorf("could not read the CoreDNS ConfigMap: %v", err)
	res.Objects = []*pb.Object{diag.Obj("ConfigMap", "kube-system", "coredns")}
	return res
}

func runClusterDomainOverlap(_ context.Context, in *diag.Inputs) []*pb.Result {
	snap, obs, res := coreDNSInputs(in)
	if res != nil {
		return []*pb.Result{res}
	}
	cf, err := parseCoreDNS(snap.CoreDNS)
	if err != nil {
		return []*pb.Result{corefileError(err)}
	}
	return evalClusterDomainOverlap(&obs.Config, cf)
}

func corefileError(err error) *pb.Result {
	res := diag.Errorf("cannot parse the CoreDNS Corefile: %v", err)
	res.Objects = []*pb.Object{diag.Obj("ConfigMap", "kube-system", "coredns")}
	var pe *corefile.Error
	if errors.As(err, &pe) {
		res.Evidence = []*pb.Evidence{diag.Ev("Corefile line", "valid Corefile syntax", fmt.Sprintf("line %d: %s", pe.Line, pe.Msg))}
	}
	res.Remediation = "fix the Corefile syntax in ConfigMap kube-system/coredns (CoreDNS would refuse to reload it too)"
	return res
}

// evalClusterDomainOverlap is dns.cluster-domain-overlap. cf is the CoreDNS
// Corefile, nil when the cluster has none (then the configured
// clusterDomain or cluster.local is used).
func evalClusterDomainOverlap(c *Config, cf *corefile.Corefile) []*pb.Result {
	if len(c.PrivateZones) == 0 && len(c.OnPremZones) == 0 {
		return []*pb.Result{diag.Skip("no dns.privateZones or dns.onPremZones configured: add them to judge CoreDNS's forwarding")}
	}
	domains, source := clusterDomains(c, cf)
	var out []*pb.Result
	for _, d := range domains {
		for _, z := range []struct {
			kind  string
			zones []string
		}{{"PrivateZone", c.PrivateZones}, {"on-prem zone", c.OnPremZones}} {
			for _, zone := range z.zones {
				zone = corefile.CanonicalName(zone)
				rel := Overlap(d, zone)
				if rel == "" {
					continue
				}
				res := diag.Fail("cluster domain %s %s the %s %s: CoreDNS answers those names from the kubernetes plugin and will not forward them, and internal names shadow the external ones", trimDot(d), rel, z.kind, trimDot(zone))
				res.Objects = []*pb.Object{zoneObj(d), zoneObj(zone), diag.Obj("ConfigMap", "kube-system", "coredns")}
				res.Evidence = []*pb.Evidence{diag.Ev("cluster domain (from "+source+")", "disjoint from "+trimDot(zone), trimDot(d))}
				res.Remediation = fmt.Sprintf("rename the %s %s so that it neither equals, contains nor lies inside %s (the cluster domain cannot change without rebuilding the cluster)", z.kind, trimDot(zone), trimDot(d))
				out = append(out, res)
			}
		}
	}
	if len(out) == 0 {
		all := append(append([]string{}, c.PrivateZones...), c.OnPremZones...)
		res := diag.Pass("cluster domain %s does not overlap the PrivateZone or on-prem zones", strings.Join(trimAll(domains), ", "))
		res.Evidence = []*pb.Evidence{diag.Ev("cluster domain (from "+source+")", "disjoint from "+strings.Join(all, ", "), strings.Join(trimAll(domains), ", "))}
		out = append(out, res)
	}
	return out
}

// clusterDomains is the cluster domain(s) the dns checks judge: the zones
// of the kubernetes plugin of the Corefile cf, else dns.clusterDomain of
// the canonical c (nil: no dns section), else cluster.local; source says
// which.
func clusterDomains(c *Config, cf *corefile.Corefile) (domains []string, source string) {
	if cf != nil {
		if domains = cf.ClusterDomains(); len(domains) > 0 {
			return domains, "the kubernetes plugin of the CoreDNS Corefile"
		}
	}
	switch {
	case c != nil && c.ClusterDomain != "":
		return []string{c.ClusterDomain}, "dns.clusterDomain in the configuration"
	case cf == nil:
		return []string{"cluster.local."}, "the default (no CoreDNS ConfigMap kube-system/coredns)"
	}
	return []string{"cluster.local."}, "the default (the Corefile has no kubernetes plugin)"
}

// ClusterDomains is the cluster domain(s) of the cluster of snap as the dns
// checks read them (the CoreDNS Corefile in the Kubernetes snapshot, then
// the canonical dns configuration c, which may be nil, then cluster.local),
// canonical with their trailing dot, and where they come from. A CoreDNS
// ConfigMap that could not be read or parsed is the ERROR result instead.
func ClusterDomains(snap *kube.Snapshot, c *Config) (domains []string, source string, failed *pb.Result) {
	if err := snap.PartErrors[kube.PartCoreDNS]; err != nil {
		return nil, "", coreDNSUnread(err)
	}
	cf, err := parseCoreDNS(snap.CoreDNS)
	if err != nil {
		return nil, "", corefileError(err)
	}
	domains, source = clusterDomains(c, cf)
	return domains, source, nil
}

// Overlap says how cluster domain d relates to zone z ("equals",
// "contains", "lies inside"), "" if they are disjoint. Both are canonical
// names.
func Overlap(d, z string) string {
	switch {
	case d == z:
		return "equals"
	case dns.IsSubDomain(d, z):
		return "contains"
	case dns.IsSubDomain(z, d):
		return "lies inside"
	}
	return ""
}

func trimAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = trimDot(v)
	}
	return out
}

func runCoreDNSForward(_ context.Context, in *diag.Inputs) []*pb.Result {
	snap, obs, res := coreDNSInputs(in)
	if res != nil {
		return []*pb.Result{res}
	}
	if snap.CoreDNS == nil {
		res := diag.Skip("no ConfigMap kube-system/coredns: the cluster does not run CoreDNS under its usual name")
		res.Objects = []*pb.Object{diag.Obj("ConfigMap", "kube-system", "coredns")}
		return []*pb.Result{res}
	}
	cf, err := parseCoreDNS(snap.CoreDNS)
	if err != nil {
		return []*pb.Result{corefileError(err)}
	}
	var node *nodeResolvConf
	if host.Source.Gathered(in) {
		node = nodeResolvConfOf(host.Source.Get(in))
	}
	return evalCoreDNSForward(&obs.Config, cf, node)
}

// nodeResolvConf is the resolv.conf the kubelet of the node vnodediag runs
// on gives pods with dnsPolicy Default, CoreDNS's among them: what a
// `forward . /etc/resolv.conf` in the Corefile sends queries to.
type nodeResolvConf struct {
	path    string
	targets []string // as forward targets, host:port
	err     string
}

func nodeResolvConfOf(f *host.Facts) *nodeResolvConf {
	rc := f.PodResolvConf()
	if rc == nil {
		return nil
	}
	n := &nodeResolvConf{path: rc.Path, err: rc.Err}
	for _, ns := range rc.Nameservers {
		n.targets = append(n.targets, corefile.NormalizeTarget(ns))
	}
	return n
}

// ExpectedForward is what CoreDNS should forward zone to: the configured
// resolvers it may use, and the ones the suggested stanza names (see
// expectedForward). A bad address in c is the error.
func ExpectedForward(c *Config, zone string, private bool) (allowed, preferred []string, err error) {
	canon, err := c.settings()
	if err != nil {
		return nil, nil, err
	}
	allowed, preferred = expectedForward(canon, corefile.CanonicalName(zone), private)
	return allowed, preferred, nil
}

// expectedForward is what CoreDNS should forward zone to: the configured
// resolvers it may use, and the ones the suggested stanza names. An on-prem
// zone goes to the on-prem resolvers (else its forwarders); a PrivateZone
// goes to its forwarders (the inbound endpoint), else to the on-prem
// resolvers, which forward it on. c is canonical.
func expectedForward(c *Config, zone string, private bool) (allowed, preferred []string) {
	var onprem []string
	for _, r := range c.OnPremResolvers {
		onprem = append(onprem, r.Address)
	}
	fw := c.forwardTargets(zone)
	allowed = append(append([]string{}, onprem...), fw...)
	switch {
	case private && len(fw) > 0:
		preferred = fw
	case len(onprem) > 0:
		preferred = onprem
	default:
		preferred = fw
	}
	slices.Sort(allowed)
	return slices.Compact(allowed), preferred
}

// evalCoreDNSForward is dns.coredns-forward: one result per configured zone.
// A forward to a resolv.conf is judged with node's nameservers when the
// host source gave them (node nil: it cannot be told).
func evalCoreDNSForward(c *Config, cf *corefile.Corefile, node *nodeResolvConf) []*pb.Result {
	type zoneKind struct {
		zone    string
		private bool
	}
	var zones []zoneKind
	for _, z := range c.OnPremZones {
		zones = append(zones, zoneKind{z, false})
	}
	for _, z := range c.PrivateZones {
		zones = append(zones, zoneKind{z, true})
	}
	if len(zones) == 0 {
		return []*pb.Result{diag.Skip("no dns.onPremZones or dns.privateZones configured: add them to judge CoreDNS's forwarding")}
	}
	var out []*pb.Result
	for _, z := range zones {
		allowed, preferred := expectedForward(c, z.zone, z.private)
		kind := "on-prem zone"
		if z.private {
			kind = "PrivateZone"
		}
		name := trimDot(z.zone)
		objs := []*pb.Object{zoneObj(z.zone), diag.Obj("ConfigMap", "kube-system", "coredns")}
		stanza := Stanza(z.zone, preferred)
		if len(allowed) == 0 {
			res := diag.Skip("%s %s: no dns.onPremResolvers or dns.forwarders configured, so the expected forward target is unknown", kind, name)
			res.Objects = objs
			out = append(out, res)
			continue
		}
		rt := cf.RouteFor(z.zone, "53")
		expected := strings.Join(allowed, " or ")
		var res *pb.Result
		switch {
		case rt.Server == nil:
			res = diag.Fail("CoreDNS has no server block for %s %s on port 53: pods cannot resolve it", kind, name)
			res.Evidence = []*pb.Evidence{diag.Ev("forward "+name, expected, "no server block")}
		case rt.Directive == nil:
			res = diag.Fail("CoreDNS does not forward %s %s: server block %s (line %d) has no forward for it", kind, name, strings.Join(rt.Server.Keys, " "), rt.Server.Line)
			res.Evidence = []*pb.Evidence{diag.Ev("forward "+name, expected, "no forward in block "+strings.Join(rt.Server.Keys, " "))}
		default:
			d := rt.Directive
			where := fmt.Sprintf("%s %s (block %s, line %d)", d.Name, strings.Join(d.Args, " "), strings.Join(rt.Server.Keys, " "), d.Line)
			var wrong []string
			resolvConf := false
			for _, t := range rt.Targets {
				if strings.HasPrefix(t, "/") {
					resolvConf = true
					continue
				}
				if !slices.Contains(allowed, t) {
					wrong = append(wrong, t)
				}
			}
			ev := []*pb.Evidence{diag.Ev("forward "+name, expected, where)}
			judged := resolvConf && node != nil && node.err == "" && len(node.targets) > 0
			var viaNode []string
			if judged {
				for _, t := range node.targets {
					if !slices.Contains(allowed, t) {
						viaNode = append(viaNode, t)
					}
				}
				ev = append(ev, diag.Ev("nameservers of "+node.path+" on the node vnodediag runs on (host source)", expected, strings.Join(node.targets, ", ")))
			} else if resolvConf && node != nil {
				why := node.err
				if why == "" {
					why = "no nameserver"
				}
				ev = append(ev, diag.Ev("nameservers of "+node.path+" on the node vnodediag runs on (host source)", expected, why))
			}
			switch {
			case len(wrong) > 0:
				res = diag.Fail("CoreDNS forwards %s %s to %s, which is not a configured resolver for it", kind, name, strings.Join(wrong, ", "))
			case len(viaNode) > 0:
				res = diag.Fail("CoreDNS forwards %s %s to the node's resolv.conf, which on this node lists %s, not a configured resolver for it (see host.resolv-conf)",
					kind, name, strings.Join(viaNode, ", "))
			case judged:
				res = diag.Pass("CoreDNS forwards %s %s to the node's resolv.conf, which on this node lists %s, configured resolvers for it (CoreDNS pods on other nodes read their node's file)",
					kind, name, strings.Join(node.targets, ", "))
			case resolvConf:
				res = diag.Warn("CoreDNS forwards %s %s to the node's resolv.conf (%s), which vnodediag cannot read: it works only if every node (and the VNode) lists the right resolvers", kind, name, where)
				if node == nil {
					res.Summary += " (a host section lets vnodediag read this node's)"
				}
			default:
				res = diag.Pass("CoreDNS forwards %s %s to %s", kind, name, strings.Join(rt.Targets, ", "))
			}
			res.Evidence = ev
		}
		if res.Status != pb.Status_PASS {
			res.Remediation = "add this server block to the Corefile in ConfigMap kube-system/coredns (before the `.:53` block; CoreDNS picks the most specific zone):\n" + stanza
		}
		res.Objects = objs
		out = append(out, res)
	}
	return out
}

// Stanza is the Corefile server block that forwards zone to targets.
func Stanza(zone string, targets []string) string {
	return fmt.Sprintf("%s:53 {\n    errors\n    cache 30\n    forward . %s\n}\n", trimDot(zone), strings.Join(targets, " "))
}
