package host

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func sysctlObj(name string) *pb.Object { return diag.Obj("Sysctl", "", name) }

// sysctlValue is a sysctl as the evidence shows it.
func (f *Facts) sysctlValue(name string) string {
	if v, ok := f.Sysctls[name]; ok {
		if v == "" {
			return "(empty)"
		}
		return v
	}
	if e, ok := f.SysctlErrors[name]; ok {
		return "unreadable: " + e
	}
	return "absent"
}

// unreadable is the ERROR of a sysctl that exists but could not be read.
func (f *Facts) unreadable(name string) *pb.Result {
	e, ok := f.SysctlErrors[name]
	if !ok {
		return nil
	}
	r := diag.Errorf("cannot read %s: %s", name, e)
	r.Objects = []*pb.Object{sysctlObj(name)}
	return r
}

// evalSysctls is host.sysctls: one result for each of ip_forward,
// rp_filter, tcp_tw_recycle and ip_local_port_range.
func evalSysctls(f *Facts) []*pb.Result {
	out := []*pb.Result{ipForward(f), rpFilterResult(f), twRecycle(f), portRange(f)}
	if f.NetnsNote != "" {
		for _, r := range out {
			r.Evidence = append(r.Evidence, diag.Ev("network namespace", "the node's", f.NetnsNote))
			if r.Status == pb.Status_PASS {
				r.Status = pb.Status_WARN
				r.Summary += " (in vnodediag's own network namespace, which may not be the node's)"
			}
		}
	}
	return out
}

func ipForward(f *Facts) *pb.Result {
	if r := f.unreadable(sysIPForward); r != nil {
		return r
	}
	v := f.sysctlValue(sysIPForward)
	var r *pb.Result
	if v == "1" {
		r = diag.Pass("%s = 1: the node forwards pod traffic", sysIPForward)
	} else {
		r = diag.Fail("%s = %s: the node does not forward packets, so its pods reach nothing beyond it", sysIPForward, v)
		r.Remediation = fmt.Sprintf("sysctl -w %s=1, and persist it in /etc/sysctl.d/99-kubernetes.conf (`%s = 1`).", sysIPForward, sysIPForward)
	}
	r.Objects = []*pb.Object{sysctlObj(sysIPForward)}
	r.Evidence = []*pb.Evidence{diag.Ev(sysIPForward, "1", v)}
	return r
}

// rpFilterResult judges reverse-path filtering: strict mode (1) drops the
// asymmetric return traffic of a leased line, whose replies arrive on
// another interface than the route back. The kernel applies the larger of
// conf.all and conf.<iface>, so both must be 0 (off) or 2 (loose).
func rpFilterResult(f *Facts) *pb.Result {
	for _, n := range []string{sysRPFilterAll, sysRPFilterDef} {
		if r := f.unreadable(n); r != nil {
			return r
		}
	}
	all, def := f.sysctlValue(sysRPFilterAll), f.sysctlValue(sysRPFilterDef)
	ev := []*pb.Evidence{diag.Ev(sysRPFilterAll, "0 or 2", all), diag.Ev(sysRPFilterDef, "0 or 2", def)}
	objs := []*pb.Object{sysctlObj(sysRPFilterAll)}
	var strict []string
	if all == "1" {
		strict = append(strict, sysRPFilterAll)
	}
	missingIface := false
	if i := f.LeasedLineInterface; i != "" {
		name := rpFilter(i)
		if r := f.unreadable(name); r != nil {
			return r
		}
		v := f.sysctlValue(name)
		ev = append(ev, diag.Ev(name, "0 or 2", v))
		objs = append(objs, sysctlObj(name))
		switch v {
		case "1":
			strict = append(strict, name)
		case "absent":
			missingIface = true
		}
	} else {
		ev = append(ev, diag.Ev("leased-line interface", "host.leasedLineInterface", "not configured: only conf.all and conf.default judged"))
	}
	var r *pb.Result
	fix := fmt.Sprintf("Set loose (2) or no (0) reverse-path filtering: sysctl -w %s=2", sysRPFilterAll)
	if f.LeasedLineInterface != "" {
		fix += fmt.Sprintf(" %s=2", rpFilter(f.LeasedLineInterface))
	}
	fix += fmt.Sprintf(" %s=2, and persist them in /etc/sysctl.d/99-kubernetes.conf.", sysRPFilterDef)
	switch {
	case len(strict) > 0:
		r = diag.Fail("reverse-path filtering is strict (1) on %s: replies that come back over the leased line on another interface than the route back are dropped",
			strings.Join(strict, ", "))
		r.Remediation = fix
	case missingIface:
		r = diag.Fail("leased-line interface %s does not exist on this node (no %s)", f.LeasedLineInterface, rpFilter(f.LeasedLineInterface))
		r.Remediation = "Set host.leasedLineInterface to the interface toward the leased line (`ip route get <a cloud address>` names it)."
	case def == "1":
		r = diag.Warn("%s is strict (1): interfaces created from now on (tunnels, a new uplink) filter strictly", sysRPFilterDef)
		r.Remediation = fix
	default:
		r = diag.Pass("reverse-path filtering is off or loose (all %s, default %s)", all, def)
	}
	r.Objects, r.Evidence = objs, ev
	return r
}

func twRecycle(f *Facts) *pb.Result {
	if r := f.unreadable(sysTWRecycle); r != nil {
		return r
	}
	v := f.sysctlValue(sysTWRecycle)
	var r *pb.Result
	switch v {
	case "absent":
		r = diag.Pass("%s is absent (removed in Linux 4.12)", sysTWRecycle)
	case "0":
		r = diag.Pass("%s = 0", sysTWRecycle)
	default:
		r = diag.Fail("%s = %s: connections from clients behind NAT (pods, the VPC's SNAT) are dropped when their timestamps disagree", sysTWRecycle, v)
		r.Remediation = fmt.Sprintf("sysctl -w %s=0 and remove it from /etc/sysctl.conf and /etc/sysctl.d/.", sysTWRecycle)
	}
	r.Objects = []*pb.Object{sysctlObj(sysTWRecycle)}
	r.Evidence = []*pb.Evidence{diag.Ev(sysTWRecycle, "absent or 0", v)}
	return r
}

// portRange judges ip_local_port_range against the NodePort range: a
// local port inside it lets an outgoing connection take a NodePort, and
// kube-proxy then fails to bind, or traffic to that NodePort goes astray.
// Ports listed in ip_local_reserved_ports are never picked.
func portRange(f *Facts) *pb.Result {
	for _, n := range []string{sysPortRange, sysReservedPorts} {
		if r := f.unreadable(n); r != nil {
			return r
		}
	}
	v := f.sysctlValue(sysPortRange)
	np := f.NodePortRange
	npText := fmt.Sprintf("%d-%d", np[0], np[1])
	lo, hi, ok := twoInts(v)
	reserved := f.sysctlValue(sysReservedPorts)
	ev := []*pb.Evidence{diag.Ev(sysPortRange, "disjoint from the NodePort range "+npText, v), diag.Ev(sysReservedPorts, "", reserved)}
	var r *pb.Result
	switch {
	case !ok:
		r = diag.Errorf("cannot parse %s %q", sysPortRange, v)
	case lo > np[1] || hi < np[0]:
		r = diag.Pass("%s %d-%d does not overlap the NodePort range %s", sysPortRange, lo, hi, npText)
	case reserved != "(empty)" && covers(reserved, max(lo, np[0]), min(hi, np[1])):
		r = diag.Pass("%s %d-%d overlaps the NodePort range %s, but %s reserves the overlap", sysPortRange, lo, hi, npText, sysReservedPorts)
	default:
		r = diag.Fail("%s %d-%d overlaps the NodePort range %s: outgoing connections may take ports %d-%d, which NodePort Services own",
			sysPortRange, lo, hi, npText, max(lo, np[0]), min(hi, np[1]))
		r.Remediation = fmt.Sprintf("Reserve the NodePort range for Services: sysctl -w %s=%s (or move the local range: sysctl -w %s=\"%d 65000\"), "+
			"and persist it in /etc/sysctl.d/99-kubernetes.conf.", sysReservedPorts, npText, sysPortRange, np[1]+1)
	}
	r.Objects, r.Evidence = []*pb.Object{sysctlObj(sysPortRange)}, ev
	return r
}

func twoInts(s string) (int, int, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	a, err1 := strconv.Atoi(f[0])
	b, err2 := strconv.Atoi(f[1])
	return a, b, err1 == nil && err2 == nil && a <= b
}

// covers reports whether the ip_local_reserved_ports list ("30000-32767,
// 40000") holds every port from lo to hi.
func covers(list string, lo, hi int) bool {
	next := lo
	for _, part := range strings.Split(list, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(part), "-")
		from, err := strconv.Atoi(a)
		if err != nil {
			continue
		}
		to := from
		if ok {
			if to, err = strconv.Atoi(b); err != nil {
				continue
			}
		}
		if from <= next && to >= next {
			next = to + 1
		}
	}
	return next > hi
}

// Thresholds of host.conntrack, as shares of nf_conntrack_max.
const (
	conntrackWarn = 0.80
	conntrackFail = 0.95
)

func evalConntrack(f *Facts) []*pb.Result {
	for _, n := range []string{sysCTCount, sysCTMax} {
		if r := f.unreadable(n); r != nil {
			return []*pb.Result{r}
		}
	}
	cs, ms := f.sysctlValue(sysCTCount), f.sysctlValue(sysCTMax)
	if cs == "absent" || ms == "absent" {
		r := diag.Skip("no conntrack table: nf_conntrack is not loaded in this network namespace (%s %s)", sysCTMax, ms)
		return []*pb.Result{r}
	}
	count, err1 := strconv.ParseInt(cs, 10, 64)
	limit, err2 := strconv.ParseInt(ms, 10, 64)
	if err1 != nil || err2 != nil || limit <= 0 {
		return []*pb.Result{diag.Errorf("cannot parse %s %q / %s %q", sysCTCount, cs, sysCTMax, ms)}
	}
	use := float64(count) / float64(limit)
	ev := []*pb.Evidence{
		diag.Ev(sysCTCount+" / "+sysCTMax, fmt.Sprintf("< %.0f %%", 100*conntrackWarn), fmt.Sprintf("%d / %d (%.1f %%)", count, limit, 100*use)),
	}
	var r *pb.Result
	fix := fmt.Sprintf("Raise the limit through kube-proxy, which sets %s = conntrack.maxPerCore x CPUs at start (k8s.kube-proxy: maxPerCore 65536 or more, "+
		"then restart kube-proxy), or with sysctl -w %s=%d where kube-proxy leaves it (maxPerCore 0). Find what fills it: `conntrack -S`, `conntrack -L | awk '{print $3}' | sort | uniq -c`.",
		sysCTMax, sysCTMax, 2*limit)
	switch {
	case use >= conntrackFail:
		r = diag.Fail("the conntrack table is %.1f %% full (%d of %d): new connections are dropped (\"nf_conntrack: table full, dropping packet\")", 100*use, count, limit)
		r.Remediation = fix
	case use >= conntrackWarn:
		r = diag.Warn("the conntrack table is %.1f %% full (%d of %d)", 100*use, count, limit)
		r.Remediation = fix
	default:
		r = diag.Pass("the conntrack table is %.1f %% full (%d of %d)", 100*use, count, limit)
	}
	r.Objects = []*pb.Object{sysctlObj(sysCTMax)}
	r.Evidence = ev
	return []*pb.Result{r}
}

// evalFirewall is host.firewall: firewalld running or ufw enabled WARNs
// (the FAQ says not to run them on nodes: their default rules drop
// forwarded pod and leased-line traffic), naming the zones and rules that
// touch the pod CIDRs, the leased-line CIDRs or the leased-line interface.
func evalFirewall(f *Facts, podCIDRs []netip.Prefix) []*pb.Result {
	watched := append(append([]netip.Prefix{}, f.LeasedLineCIDRs...), podCIDRs...)
	var out []*pb.Result
	fw := f.Firewalld
	switch {
	case fw.Running:
		r := diag.Warn("firewalld is running (%s): its zones filter forwarded pod and leased-line traffic", fw.RunningWhy)
		r.Objects = []*pb.Object{diag.Obj("Service", "", "firewalld")}
		r.Evidence = firewalldEvidence(f, watched)
		r.Remediation = "Stop and disable it: `systemctl disable --now firewalld` (then restart kube-proxy and the CNI agent, which re-create their rules). " +
			"If a firewall must stay, put the pod CIDRs and the leased-line CIDRs in the trusted zone: " +
			"`firewall-cmd --permanent --zone=trusted --add-source=<CIDR>` for each, and `firewall-cmd --reload`."
		out = append(out, r)
	case fw.Enabled && !fw.Masked:
		r := diag.Warn("firewalld is not running but is enabled (%s): it starts at the next boot", fw.EnabledWhy)
		r.Objects = []*pb.Object{diag.Obj("Service", "", "firewalld")}
		r.Remediation = "`systemctl disable firewalld` (or `systemctl mask firewalld`)."
		out = append(out, r)
	}
	u := f.UFW
	if u.Enabled {
		r := diag.Warn("ufw is enabled (/etc/ufw/ufw.conf ENABLED=yes): its rules are loaded at boot and filter forwarded traffic")
		r.Objects = []*pb.Object{diag.Obj("Service", "", "ufw")}
		ev := []*pb.Evidence{
			diag.Ev("DEFAULT_FORWARD_POLICY", "ACCEPT", orAbsent(u.DefaultForwardPolicy)),
			diag.Ev("DEFAULT_INPUT_POLICY", "", orAbsent(u.DefaultInputPolicy)),
		}
		if strings.EqualFold(u.DefaultForwardPolicy, "DROP") || strings.EqualFold(u.DefaultForwardPolicy, "REJECT") {
			r.Summary += "; its forward policy " + u.DefaultForwardPolicy + " drops traffic to and from the pods"
		}
		n := 0
		for _, rule := range u.Rules {
			if touches(watched, rule.Src) || touches(watched, rule.Dst) {
				n++
				ev = append(ev, diag.Ev("rule touching a pod or leased-line CIDR", "", rule.Text))
			}
		}
		ev = append(ev, diag.Ev("user rules", "", fmt.Sprintf("%d, %d touching the pod or leased-line CIDRs", len(u.Rules), n)))
		r.Evidence = ev
		r.Remediation = "Disable it: `ufw disable` (then restart kube-proxy and the CNI agent). If it must stay: DEFAULT_FORWARD_POLICY=\"ACCEPT\" in /etc/default/ufw " +
			"and `ufw allow from <CIDR>` for each pod and leased-line CIDR, then `ufw reload`."
		out = append(out, r)
	}
	if len(out) == 0 {
		r := diag.Pass("neither firewalld nor ufw is active on this node")
		r.Evidence = []*pb.Evidence{
			diag.Ev("firewalld", "not running", fmt.Sprintf("installed %v, enabled %v, masked %v, running %v", fw.Installed, fw.Enabled, fw.Masked, fw.Running)),
			diag.Ev("ufw", "not enabled", fmt.Sprintf("installed %v, enabled %v", u.Installed, u.Enabled)),
		}
		out = append(out, r)
	}
	return out
}

// firewalldEvidence names the default zone and the zones and rich rules
// that touch the watched CIDRs or the leased-line interface.
func firewalldEvidence(f *Facts, watched []netip.Prefix) []*pb.Evidence {
	fw := f.Firewalld
	ev := []*pb.Evidence{diag.Ev("default zone", "", fw.DefaultZone)}
	var active []string
	for _, z := range fw.Zones {
		bound := len(z.Interfaces) > 0 || len(z.Sources) > 0 || z.Name == fw.DefaultZone
		if bound {
			active = append(active, z.Name)
		}
		var why []string
		for _, i := range z.Interfaces {
			if i == f.LeasedLineInterface {
				why = append(why, "binds the leased-line interface "+i)
			}
		}
		for _, s := range z.Sources {
			if touches(watched, s) {
				why = append(why, "source "+s)
			}
		}
		for _, rr := range z.RichRules {
			if touches(watched, rr.Source) || touches(watched, rr.Destination) {
				why = append(why, rr.Text)
			}
		}
		if len(why) > 0 || z.Name == fw.DefaultZone {
			desc := fmt.Sprintf("target %s, interfaces [%s], sources [%s], services [%s], ports [%s], forward %v",
				z.Target, strings.Join(z.Interfaces, " "), strings.Join(z.Sources, " "), strings.Join(z.Services, " "), strings.Join(z.Ports, " "), z.Forward)
			if len(why) > 0 {
				desc += "; touches: " + strings.Join(why, "; ")
			}
			ev = append(ev, diag.Ev("zone "+z.Name+" ("+z.File+")", "", desc))
		}
	}
	ev = append(ev, diag.Ev("active zones", "", strings.Join(active, ", ")))
	return ev
}

// touches reports whether a rule's address (a CIDR or an address; "any"
// and 0.0.0.0/0 are not specific and touch nothing in particular)
// overlaps a watched CIDR.
func touches(watched []netip.Prefix, addr string) bool {
	if addr == "" || addr == "any" {
		return false
	}
	p, err := netip.ParsePrefix(addr)
	if err != nil {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Bits() == 0 {
		return false
	}
	for _, w := range watched {
		if w.Overlaps(p) {
			return true
		}
	}
	return false
}

func orAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

// evalResolvConf is host.resolv-conf: the resolvers the kubelet hands pods
// with dnsPolicy Default (CoreDNS's own forward targets when it forwards
// to /etc/resolv.conf) must be usable from a pod.
func evalResolvConf(f *Facts) []*pb.Result {
	rc := f.PodResolvConf()
	obj := []*pb.Object{diag.Obj("File", "", rc.Path)}
	ev := []*pb.Evidence{}
	if f.KubeletConfig != "" {
		ev = append(ev, diag.Ev("kubelet resolvConf ("+f.KubeletConfig+")", "", orAbsent(f.KubeletResolvConf)))
	} else {
		ev = append(ev, diag.Ev("kubelet config", kubeletConfig, "not found: /etc/resolv.conf assumed"))
	}
	if rc.Err != "" {
		r := diag.Fail("cannot read %s, the resolv.conf the kubelet gives pods: %s", rc.Path, rc.Err)
		r.Objects, r.Evidence = obj, ev
		r.Remediation = fmt.Sprintf("Create %s with the on-prem resolvers, or point the kubelet's resolvConf at the file that has them.", rc.Path)
		return []*pb.Result{r}
	}
	ev = append(ev, diag.Ev("nameservers in "+rc.Path, "1 to 3 non-loopback resolvers", orAbsent(strings.Join(rc.Nameservers, ", "))),
		diag.Ev("search", "", orAbsent(strings.Join(rc.Search, " "))))
	if up := f.ResolvedUpstream; up != nil && rc == f.EtcResolv {
		ev = append(ev, diag.Ev("systemd-resolved upstream ("+up.Path+")", "", orAbsent(strings.Join(up.Nameservers, ", "))))
	}
	var r *pb.Result
	switch {
	case len(rc.Nameservers) == 0:
		r = diag.Fail("%s lists no nameserver: pods with dnsPolicy Default, CoreDNS among them, resolve nothing outside the cluster", rc.Path)
		r.Remediation = fmt.Sprintf("Add the on-prem resolvers to %s (`nameserver <address>` lines).", rc.Path)
	case rc.loopbackOnly() && f.KubeletConfig == "":
		r = diag.Warn("%s lists only loopback nameservers (%s): if the kubelet hands it to pods (no kubelet config was found to tell), CoreDNS forwarding to it loops",
			rc.Path, strings.Join(rc.Nameservers, ", "))
		r.Remediation = "Start the kubelet with --resolv-conf=/run/systemd/resolve/resolv.conf (or resolvConf in its config), where systemd-resolved keeps the upstream servers."
	case rc.loopbackOnly():
		r = diag.Fail("%s lists only loopback nameservers (%s): in a pod that is the pod itself, so CoreDNS forwarding to it loops (its loop plugin then stops it)",
			rc.Path, strings.Join(rc.Nameservers, ", "))
		r.Remediation = "Give the kubelet a resolv.conf with the real resolvers: resolvConf: /run/systemd/resolve/resolv.conf in its config " +
			"(systemd-resolved keeps the upstream servers there), then restart the kubelet and the CoreDNS pods."
	case len(rc.Nameservers) > 3:
		r = diag.Warn("%s lists %d nameservers: the resolver and the kubelet use only the first three (%s)", rc.Path, len(rc.Nameservers), strings.Join(rc.Nameservers[:3], ", "))
		r.Remediation = "Keep at most three nameservers, the ones that resolve both the on-prem and the PrivateZone names first."
	case len(rc.Search) > 32:
		r = diag.Warn("%s has %d search domains: the kubelet keeps 32", rc.Path, len(rc.Search))
		r.Remediation = "Shorten the search list."
	default:
		r = diag.Pass("%s gives pods the nameservers %s", rc.Path, strings.Join(rc.Nameservers, ", "))
	}
	r.Objects, r.Evidence = obj, ev
	return []*pb.Result{r}
}
