package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const refBGP = "Alibaba Cloud ECI hybrid cluster FAQ: connect the on-prem network over Express Connect and exchange routes with BGP (VBR)"

// The check IDs of this package (a public contract: runbooks match on them).
const (
	CheckSession            = "bgp.session"
	CheckCloudRoutesLearned = "bgp.cloud-routes-learned"
	CheckPodCIDRAdvertised  = "bgp.podcidr-advertised"
)

// Source is the BGP source's key: the observer's table of a run.
var Source = diag.NewKey[*Table]("bgp")

// Family is the bgp.* checks and the `bgp` section.
func Family() diag.Family {
	return diag.Family{Name: "bgp", Checks: Checks, Section: diag.SectionOf("bgp", NewProvider).WithExample(Example)}
}

// Checks returns the bgp.* checks.
func Checks() []diag.Check {
	return []diag.Check{
		{
			ID: CheckSession, Title: "BGP sessions to the on-prem routers are Established",
			Needs: diag.Needs(Source), Reference: refBGP,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result { return evalSessions(Source.Get(in)) },
		},
		{
			ID: CheckCloudRoutesLearned, Title: "Cloud prefixes, 100.64.0.0/10 and the ECS nodes' podCIDRs are learned on-prem",
			Needs: diag.Needs(Source), Optional: diag.Needs(kube.Source), Reference: refBGP,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				t := Source.Get(in)
				out := evalCloudRoutes(t)
				if kube.Source.Gathered(in) && noSession(t) == nil {
					out = append(out, evalECSPodCIDRs(ctx, t, kube.Source.Get(in).Nodes)...)
				}
				return out
			},
		},
		{
			ID: CheckPodCIDRAdvertised, Title: "Every on-prem node's podCIDR is advertised",
			Needs: diag.Needs(Source, kube.Source), Reference: refBGP,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				return evalPodCIDRs(ctx, Source.Get(in), kube.Source.Get(in).Nodes)
			},
		},
	}
}

// evalSessions is bgp.session: one result per configured peer.
func evalSessions(t *Table) []*pb.Result {
	var out []*pb.Result
	for i := range t.Peers {
		p := &t.Peers[i]
		out = append(out, sessionResult(t, p))
	}
	if len(out) == 0 {
		out = append(out, diag.Skip("no BGP peer configured: add bgp.peers"))
	}
	return out
}

func sessionResult(t *Table, p *PeerStatus) *pb.Result {
	obj := []*pb.Object{diag.Obj("BGPPeer", "", p.Label())}
	var res *pb.Result
	ev := []*pb.Evidence{diag.Ev("session state", "ESTABLISHED", p.State)}
	switch {
	case t.ExportPolicy != "REJECT":
		// Cannot happen (Start sets it); if it does, say so loudly.
		res = diag.Fail("observer's export policy toward %s is %q, not REJECT: it could advertise routes", p.Label(), t.ExportPolicy)
		res.Remediation = "Stop vnodediag and report this as a bug: the observer must advertise nothing."
	case p.NotStarted != "":
		// Not a finding about the router: the observer could not look.
		res = diag.Errorf("BGP session to %s was not started: %s", p.Label(), p.NotStarted)
		ev = append(ev, diag.Ev("TCP-MD5 key installed", "yes", "no"))
		res.Remediation = "The kernel of the host vnodediag runs on refused the TCP-MD5 (RFC 2385) key, and a session " +
			"configured with a password is never run without it. Check that the kernel has TCP-MD5 (CONFIG_TCP_MD5SIG), " +
			"that net.core.optmem_max is not exhausted, and that no seccomp or LSM policy blocks setsockopt(TCP_MD5SIG)."
	case p.MaxPrefixExceeded:
		res = diag.Fail("BGP peer %s sent more than %d prefixes; the observer cut the session", p.Label(), p.MaxPrefixes)
		ev = append(ev, diag.Ev("routes received", fmt.Sprintf("<= %d per family", p.MaxPrefixes), "more (limit reached)"))
		res.Remediation = fmt.Sprintf("The router sends a larger table than expected (a full table?). Filter what it "+
			"exports to the observer (pod CIDRs and cloud prefixes are enough), or raise bgp.peers[].maxPrefixes "+
			"for %s if the table really is that large.", p.Label())
	case !p.Established():
		why := p.LastError
		if why == "" {
			why = "no error reported yet"
		}
		res = diag.Fail("BGP session to %s is %s, not Established: %s", p.Label(), p.State, why)
		ev = append(ev, diag.Ev("last error", "none", why))
		intro, snips := routerSnippets(t, p)
		res.Remediation = hint(t, p) + "\n" + intro
		res.Snippets = snips
	default:
		up := time.Since(p.Since).Round(time.Second)
		ev = append(ev, diag.Ev("established for", "", up.String()),
			diag.Ev("routes received", "", fmt.Sprint(p.Received())),
			diag.Ev("observer export policy", "REJECT", t.ExportPolicy))
		incomplete := []string{}
		for _, f := range p.Families {
			if !f.EndOfRIB {
				incomplete = append(incomplete, f.Family)
			}
		}
		switch {
		case p.Flaps > 0:
			res = diag.Warn("BGP session to %s is Established but flapped %d times", p.Label(), p.Flaps)
			ev = append(ev, diag.Ev("flaps", "0", fmt.Sprint(p.Flaps)), diag.Ev("last error", "none", p.LastError))
			res.Remediation = "Look at the router's log around " + p.LastErrorAt.UTC().Format(time.RFC3339) +
				" for why the session dropped (hold timer, link, NOTIFICATION)."
		case len(incomplete) > 0:
			res = diag.Warn("BGP session to %s is Established, but no End-of-RIB for %s yet: the table may be incomplete",
				p.Label(), strings.Join(incomplete, ", "))
			res.Remediation = "Enable graceful restart (helper/aware) on the router so it sends End-of-RIB, or raise bgp.establishTimeout."
		default:
			res = diag.Pass("BGP session to %s is Established (%s, %d routes)", p.Label(), up, p.Received())
		}
	}
	res.Objects, res.Evidence = obj, ev
	return res
}

// hint turns the last error into the likely cause.
func hint(t *Table, p *PeerStatus) string {
	e := strings.ToLower(p.LastError)
	switch {
	case strings.Contains(e, "bad-peer-as") || strings.Contains(e, "as number mismatch"):
		return fmt.Sprintf("AS number mismatch: the observer expects AS %d from %s (bgp.peers[].asn) and announces AS %d; "+
			"the router's `local as` and its neighbor's `remote-as` for the observer must match these.", p.ASN, p.Label(), t.LocalASN)
	case strings.Contains(e, "connection refused"):
		return fmt.Sprintf("%s refused the TCP connection: the router has no BGP neighbor for the observer's address, or does not listen on that address/port.", p.Label())
	case e == "" && (p.State == "OPENSENT" || p.State == "OPENCONFIRM"):
		return fmt.Sprintf("%s accepted the TCP connection but sent no BGP OPEN: something other than the router's BGP "+
			"process answers on that address and port (a proxy, a port forward, another service), or the BGP process is hung.", p.Label())
	case strings.Contains(e, "hold timer expired"):
		return "The router stopped sending KEEPALIVEs: check the link, the router's CPU, and that hold times agree."
	case strings.Contains(e, "i/o timeout") || strings.Contains(e, "no route to host") || strings.Contains(e, "network is unreachable") || e == "":
		msg := fmt.Sprintf("No BGP connection with %s. Check that the address is reachable, no firewall drops TCP port 179", p.Label())
		if t.ListenPort > 0 {
			msg += fmt.Sprintf(" (or the observer's listener %s when the router dials)", t.Listener)
		}
		return msg + ", and that both sides use the same TCP MD5 password: with a mismatch the kernel drops every segment silently and the session just never starts."
	case strings.Contains(e, "notification"):
		return "The router and the observer disagree on the session parameters; the NOTIFICATION above names which."
	}
	return "See the last error above."
}

// evalCloudRoutes is bgp.cloud-routes-learned: one result per expected
// cloud prefix.
func evalCloudRoutes(t *Table) []*pb.Result {
	if res := noSession(t); res != nil {
		return []*pb.Result{res}
	}
	set := t.Set()
	var out []*pb.Result
	for _, cp := range t.CloudPrefixes {
		obj := []*pb.Object{diag.Obj("Prefix", "", cp.String())}
		holes, cut := set.Uncovered(cp, diag.ListLimit)
		var res *pb.Result
		switch {
		case len(holes) == 0:
			res = diag.Pass("cloud prefix %s is covered: %s", cp, coveredBy(t, cp))
			res.Evidence = []*pb.Evidence{diag.Ev("covered by", cp.String(), coveredBy(t, cp))}
		case len(holes) == 1 && holes[0] == cp:
			res = diag.Fail("cloud prefix %s is not learned from any peer", cp)
			res.Evidence = []*pb.Evidence{diag.Ev("route covering "+cp.String(), cp.String()+" or less specific", "none")}
		default:
			res = diag.Warn("cloud prefix %s is only partly covered: %s not learned", cp, prefixList(holes, cut))
			res.Evidence = []*pb.Evidence{
				diag.Ev("covered by", cp.String(), coveredBy(t, cp)),
				diag.Ev("uncovered", "none", prefixList(holes, cut)),
			}
		}
		if len(holes) > 0 {
			if aff := affected(t.ServiceAddresses, holes); len(aff) > 0 {
				res.Evidence = append(res.Evidence, diag.Ev("unreachable service addresses", "none", strings.Join(aff, ", ")))
				res.Summary += " (affects " + strings.Join(aff, ", ") + ")"
			}
			res.Remediation = fmt.Sprintf("Make the on-prem router learn %s: from the VBR over BGP (the VBR must "+
				"advertise the VPC CIDRs and 100.64.0.0/10), or as a static route to the leased line that it "+
				"redistributes (config below; <VBR-address> is the VBR's end of the leased line).", cp)
			res.Snippets = staticToVBRSnippets(cp)
		}
		res.Objects = obj
		out = append(out, res)
	}
	return out
}

// noSession is the ERROR result when no session is up: the router's table
// is then unknown, which is neither a PASS nor a FAIL.
func noSession(t *Table) *pb.Result {
	if len(t.Peers) == 0 {
		return diag.Skip("no BGP peer configured: add bgp.peers")
	}
	for i := range t.Peers {
		if t.Peers[i].Established() {
			return nil
		}
	}
	res := diag.Errorf("no BGP session is Established, so the routers' tables are unknown (see bgp.session)")
	res.Evidence = []*pb.Evidence{diag.Ev("established sessions", ">= 1", "0")}
	return res
}

// coveredBy describes the routes that cover p: the longest covering route,
// or the more specific routes that together cover it.
func coveredBy(t *Table, p netip.Prefix) string {
	set := t.Set()
	if v, _, ok := set.Longest(p); ok {
		r := t.Routes[v]
		return fmt.Sprintf("%s from %s", r.Prefix, r.Peer)
	}
	vals := set.Within(p, diag.ListLimit+1)
	parts := make([]string, 0, len(vals))
	for i, v := range vals {
		if i == diag.ListLimit {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s from %s", t.Routes[v].Prefix, t.Routes[v].Peer))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return "more specific routes only: " + strings.Join(parts, ", ")
}

func prefixList(ps []netip.Prefix, cut bool) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	out := strings.Join(s, ", ")
	if cut {
		out += ", ..."
	}
	return out
}

func affected(addrs []netip.Addr, holes []netip.Prefix) []string {
	var out []string
	for _, a := range addrs {
		for _, h := range holes {
			if h.Contains(a) {
				out = append(out, a.String())
				break
			}
		}
	}
	return out
}

// podCIDRMiss is a node podCIDR no received route covers, or only partly.
type podCIDRMiss struct {
	node, cidr, detail string
	ip                 string // the node's InternalIP, "" when it has none
}

// uncoveredPodCIDRs looks up the podCIDRs of the nodes of class in the
// received routes: longest-prefix match, and the uncovered parts of a CIDR
// that more specific routes cover only partly. stopped is set when ctx ended.
func uncoveredPodCIDRs(ctx context.Context, t *Table, nodes []*corev1.Node, class kube.NodeClass) (misses []podCIDRMiss, checked, noCIDR int, stopped bool) {
	set := t.Set()
	for i, n := range nodes {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, 0, 0, true
		}
		if kube.Classify(n).Class != class {
			continue
		}
		cidrs := kube.PodCIDRStrings(n)
		if len(cidrs) == 0 {
			noCIDR++
			continue
		}
		ip := internalIP(n)
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				misses = append(misses, podCIDRMiss{n.Name, c, "not a CIDR", ip})
				continue
			}
			checked++
			holes, cut := set.Uncovered(p, 4)
			switch {
			case len(holes) == 0:
			case len(holes) == 1 && holes[0] == p.Masked():
				misses = append(misses, podCIDRMiss{n.Name, c, "no route", ip})
			default:
				misses = append(misses, podCIDRMiss{n.Name, c, "partly: " + prefixList(holes, cut) + " uncovered", ip})
			}
		}
	}
	sort.Slice(misses, func(i, j int) bool { return misses[i].node < misses[j].node })
	return misses, checked, noCIDR, false
}

// missResult is the FAIL naming every node whose podCIDR is not covered,
// one evidence line per node (up to diag.ListLimit); it also returns the
// uncovered CIDRs.
func missResult(summary string, misses []podCIDRMiss) (*pb.Result, []string) {
	cidrs := make([]string, len(misses))
	for i, m := range misses {
		cidrs[i] = m.cidr
	}
	res := diag.Fail("%s", summary)
	for i, m := range misses {
		res.Objects = append(res.Objects, diag.Obj("Node", "", m.node))
		if i < diag.ListLimit {
			res.Evidence = append(res.Evidence, diag.Ev(fmt.Sprintf("node %s podCIDR %s", m.node, m.cidr), "covered by a received route", m.detail))
		}
	}
	if len(misses) > diag.ListLimit {
		res.Evidence = append(res.Evidence, diag.Ev("more uncovered nodes", "", fmt.Sprint(len(misses)-diag.ListLimit)))
	}
	return res, cidrs
}

// evalPodCIDRs is bgp.podcidr-advertised. The observer peers with the
// on-prem router, so the routes it receives are what that router
// advertises toward the cloud: a podCIDR no received route covers is not
// advertised. One result; the uncovered nodes are its objects.
func evalPodCIDRs(ctx context.Context, t *Table, nodes []*corev1.Node) []*pb.Result {
	if res := noSession(t); res != nil {
		return []*pb.Result{res}
	}
	misses, checked, noCIDR, stopped := uncoveredPodCIDRs(ctx, t, nodes, kube.ClassOnPrem)
	if stopped {
		return []*pb.Result{diag.Errorf("podCIDR coverage not finished: %v", ctx.Err())}
	}
	if checked == 0 && len(misses) == 0 {
		res := diag.Skip("no on-prem node has a podCIDR to check")
		if noCIDR > 0 {
			res.Summary += fmt.Sprintf(" (%d on-prem nodes without podCIDR: see k8s.podcidr-assigned)", noCIDR)
		}
		return []*pb.Result{res}
	}
	if len(misses) == 0 {
		res := diag.Pass("all %d on-prem podCIDRs are covered by routes the on-prem router advertises", checked)
		res.Evidence = []*pb.Evidence{diag.Ev("uncovered podCIDRs", "0", "0")}
		return []*pb.Result{res}
	}
	missed := make([]string, len(misses))
	for i, m := range misses {
		missed[i] = m.node
	}
	res, cidrs := missResult(fmt.Sprintf("%d of %d on-prem podCIDRs are not advertised: %s", len(misses), checked, diag.JoinFirst(missed, 5)), misses)
	res.Remediation = "Advertise the on-prem pod CIDRs (or one aggregate covering them) from the on-prem router " +
		"toward the VBR: a static route per podCIDR to its node, exported to BGP (config below). Missing: " + diag.JoinCapped(cidrs)
	var routes []staticRoute
	for _, m := range misses {
		p, err := netip.ParsePrefix(m.cidr)
		if err != nil {
			continue
		}
		via := m.ip
		if via == "" {
			via = "<" + m.node + "-InternalIP>"
		}
		routes = append(routes, staticRoute{prefix: p.Masked(), via: via})
	}
	if len(routes) > 0 {
		res.Snippets = advertiseSnippets(t, "onprem-pods", routes)
	}
	return []*pb.Result{res}
}

// internalIP is the node's first InternalIP address, "" when it has none.
func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// staticToVBRSnippets routes a cloud prefix to the VBR by a static route
// the on-prem router redistributes.
func staticToVBRSnippets(p netip.Prefix) []*pb.Snippet {
	addr, mask := netMask(p)
	return []*pb.Snippet{
		{Title: "BIRD 2: " + p.String() + " to the VBR", Language: "bird", Text: fmt.Sprintf("protocol static cloud {\n  ipv4;\n  route %s via <VBR-address>;\n}", p)},
		{Title: "FRR: " + p.String() + " to the VBR", Language: "frr", Text: fmt.Sprintf("ip route %s <VBR-address>", p)},
		{Title: "Cisco IOS: " + p.String() + " to the VBR", Language: "ios", Text: fmt.Sprintf("ip route %s %s <VBR-address>", addr, mask)},
		{Title: "Junos: " + p.String() + " to the VBR", Language: "junos", Text: fmt.Sprintf("set routing-options static route %s next-hop <VBR-address>", p)},
	}
}

// evalECSPodCIDRs is the ECS half of bgp.cloud-routes-learned: the cloud
// controller manager puts each ECS node's podCIDR into the VPC route table,
// and BGP must carry it on-prem, or on-prem cannot reach the pods of that
// node. One result; the nodes whose podCIDR no received route covers are
// its objects.
func evalECSPodCIDRs(ctx context.Context, t *Table, nodes []*corev1.Node) []*pb.Result {
	misses, checked, _, stopped := uncoveredPodCIDRs(ctx, t, nodes, kube.ClassECS)
	switch {
	case stopped:
		return []*pb.Result{diag.Errorf("ECS podCIDR coverage not finished: %v", ctx.Err())}
	case checked == 0 && len(misses) == 0:
		return nil
	case len(misses) == 0:
		res := diag.Pass("all %d ECS node podCIDRs are covered by routes learned on-prem", checked)
		res.Evidence = []*pb.Evidence{diag.Ev("uncovered ECS podCIDRs", "0", "0")}
		return []*pb.Result{res}
	}
	var named []string
	for _, m := range misses {
		named = append(named, m.node+" "+m.cidr)
	}
	res, cidrs := missResult(fmt.Sprintf("%d of %d ECS node podCIDRs are not learned on-prem: %s", len(misses), checked, diag.JoinFirst(named, 5)), misses)
	res.Remediation = "The cloud controller manager puts each ECS node's podCIDR into the VPC route table (k8s.node-network and, with a cloud section, " +
		"cloud.vpc-pod-routes show whether it did); the VBR must then advertise those routes, or one aggregate covering them, to the on-prem router " +
		"(publish the VPC's pod CIDR routes to the VBR / its BGP, or add the aggregate as a static route toward the leased line on-prem). Missing: " + diag.JoinCapped(cidrs)
	return []*pb.Result{res}
}

// Example is the `bgp` section of `vnodediag config example`: every field,
// commented.
const Example = `bgp:                                # the observer: a passive, read-only BGP speaker (gobgp) that advertises nothing
  localASN: 65010
  routerID: 192.0.2.10
  listenAddress: 192.0.2.10         # optional
  listenPort: 1179                  # default; 179 needs CAP_NET_BIND_SERVICE; -1 = dial only, no listener
  establishTimeout: 30s             # diagnose: wait for Established + End-of-RIB, at most this
  peers:
    - name: core-1
      address: 192.0.2.1
      port: 179
      asn: 65001
      password: "..."               # TCP MD5; never logged or reported
      passive: false                # true: wait for the router to dial
      multihop: 0                   # eBGP multihop TTL, 0 = directly connected
      holdTime: 90                  # 0 or 3-65535
      families: [ipv4-unicast, ipv6-unicast]
      maxPrefixes: 1000000          # per family; past it the session is cut and reported, the run goes on
  cloudPrefixes: [172.16.0.0/12]    # VPC / vSwitch CIDRs; 100.64.0.0/10 is always checked
  serviceAddresses: [100.100.2.136, 100.100.2.138]
`
