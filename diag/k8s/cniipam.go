package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
	kversion "k8s.io/apimachinery/pkg/version"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// calicoHostLocal is the IPAM block that makes Calico take each node's pod
// addresses from its spec.podCIDR, the range the cloud controller manager
// routes (and BGP advertises).
const calicoHostLocal = `"ipam": {"type": "host-local", "subnet": "usePodCidr"}`

func runCNIIPAM(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	if r := s.Unread(kube.PartCNIConfig); r != nil {
		return []*pb.Result{r}
	}
	return evalCNIIPAM(ctx, s.Nodes, s.CNIConfigs, s.Version)
}

// evalCNIIPAM judges the IPAM of the CNI whose ConfigMap is in the
// cluster: Calico must allocate from each node's podCIDR (host-local with
// usePodCidr), Flannel's network must contain every podCIDR and its CNI
// config carry a cniVersion (required by the kubelet since 1.16).
func evalCNIIPAM(ctx context.Context, nodes []*corev1.Node, cms []*corev1.ConfigMap, v *kversion.Info) []*pb.Result {
	if len(cms) == 0 {
		return []*pb.Result{diag.Skip("no ConfigMap calico-config or kube-flannel-cfg: the CNI is neither Calico nor Flannel (or runs under other names), its IPAM is not judged")}
	}
	var out []*pb.Result
	poll := diag.NewPoll(ctx)
	for _, cm := range cms {
		var res *pb.Result
		switch cm.Name {
		case kube.CalicoConfigName:
			res = calicoIPAM(cm)
		default:
			res = flannelIPAM(poll, cm, nodes, v)
		}
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		res.Objects = append([]*pb.Object{diag.Obj("ConfigMap", cm.Namespace, cm.Name)}, res.Objects...)
		out = append(out, res)
	}
	return out
}

var placeholderRe = regexp.MustCompile(`([:\[,]\s*)__[A-Z0-9_]+__`)

// cniTemplate parses a CNI config as Calico's install container writes it:
// placeholders such as __CNI_MTU__ stand unquoted where numbers go.
func cniTemplate(src string) (map[string]any, error) {
	var conf map[string]any
	if err := json.Unmarshal([]byte(placeholderRe.ReplaceAllString(src, "${1}0")), &conf); err != nil {
		return nil, err
	}
	return conf, nil
}

// cniPlugins are a CNI config's plugins: a conflist's list, or the single
// plugin of a plain config.
func cniPlugins(conf map[string]any) []map[string]any {
	if list, ok := conf["plugins"].([]any); ok {
		var out []map[string]any
		for _, p := range list {
			if m, ok := p.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return []map[string]any{conf}
}

func calicoIPAM(cm *corev1.ConfigMap) *pb.Result {
	src, ok := cm.Data["cni_network_config"]
	if !ok {
		res := diag.Warn("calico-config has no cni_network_config: Calico's IPAM cannot be told")
		res.Remediation = "Check how Calico's CNI config is installed (the operator keeps it in its Installation resource); it must use " + calicoHostLocal + "."
		return res
	}
	conf, err := cniTemplate(src)
	if err != nil {
		res := diag.Errorf("cannot parse cni_network_config of ConfigMap %s/%s: %v", cm.Namespace, cm.Name, err)
		res.Evidence = []*pb.Evidence{diag.Ev("cni_network_config", "JSON", err.Error())}
		return res
	}
	var ipam map[string]any
	for _, p := range cniPlugins(conf) {
		if p["type"] == "calico" {
			ipam, _ = p["ipam"].(map[string]any)
		}
	}
	if ipam == nil {
		res := diag.Warn("cni_network_config of ConfigMap %s/%s has no calico plugin with an ipam block", cm.Namespace, cm.Name)
		res.Remediation = "Give the calico plugin " + calicoHostLocal + "."
		return res
	}
	typ, _ := ipam["type"].(string)
	got, _ := json.Marshal(ipam)
	ev := []*pb.Evidence{diag.Ev("calico plugin ipam", calicoHostLocal, string(got))}
	if typ == "host-local" && usesPodCIDR(ipam) {
		res := diag.Pass("Calico allocates pod IPs from each node's podCIDR (host-local, usePodCidr)")
		res.Evidence = ev
		return res
	}
	why := fmt.Sprintf("IPAM %q", typ)
	if typ == "host-local" {
		why = "host-local IPAM with a fixed subnet"
	}
	res := diag.Fail("Calico allocates pod IPs with %s, not from each node's podCIDR: pod IPs leave the ranges the cloud routes and BGP carry (the cause of k8s.pod-ip-in-podcidr failures)", why)
	res.Evidence = ev
	res.Remediation = fmt.Sprintf("In ConfigMap %s/%s, key cni_network_config, set the calico plugin's ipam to:\n  %s\n"+
		"then restart calico-node (`kubectl -n %s rollout restart daemonset calico-node`) so it rewrites the CNI config on every node, "+
		"and recreate the pods k8s.pod-ip-in-podcidr lists: existing pods keep their addresses.", cm.Namespace, cm.Name, calicoHostLocal, cm.Namespace)
	return res
}

// usesPodCIDR reports whether host-local takes its range from the node's
// podCIDR, as "subnet" or in "ranges".
func usesPodCIDR(ipam map[string]any) bool {
	if s, _ := ipam["subnet"].(string); s == "usePodCidr" {
		return true
	}
	ranges, _ := ipam["ranges"].([]any)
	for _, set := range ranges {
		rs, _ := set.([]any)
		for _, r := range rs {
			if m, ok := r.(map[string]any); ok && m["subnet"] == "usePodCidr" {
				return true
			}
		}
	}
	return false
}

// cniVersions are the CNI spec versions the kubelet's libcni accepts in a
// conflist.
var cniVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// flannelIPAM judges Flannel's ConfigMap; when poll says stop it returns
// early, and the caller reports the check stopped.
func flannelIPAM(poll *diag.Poll, cm *corev1.ConfigMap, nodes []*corev1.Node, v *kversion.Info) *pb.Result {
	var problems, fixes []string
	var ev []*pb.Evidence
	var network []netip.Prefix
	netConf, ok := cm.Data["net-conf.json"]
	if !ok {
		problems = append(problems, "no net-conf.json")
	} else {
		var nc struct {
			Network     string
			IPv6Network string
		}
		if err := json.Unmarshal([]byte(netConf), &nc); err != nil {
			problems = append(problems, "net-conf.json does not parse: "+err.Error())
		}
		for _, n := range []string{nc.Network, nc.IPv6Network} {
			if p, err := netip.ParsePrefix(n); err == nil {
				network = append(network, p.Masked())
			}
		}
		ev = append(ev, diag.Ev("net-conf.json Network", "contains every podCIDR", strings.Join(prefixStrings(network), ", ")))
	}
	if len(network) > 0 {
		var outside []string
		for _, n := range sortedNodes(nodes) {
			if poll.Stop() {
				return nil
			}
			if kube.ClassOf(n) == kube.ClassVirtual {
				continue
			}
			for _, c := range kube.PodCIDRs(n) {
				if !coveredByAny(c, network) {
					outside = append(outside, n.Name+" "+c.String())
				}
			}
		}
		if len(outside) > 0 {
			problems = append(problems, fmt.Sprintf("%d podCIDR(s) outside Network %s: %s", len(outside), strings.Join(prefixStrings(network), ", "), diag.JoinFirst(outside, 5)))
			fixes = append(fixes, "Make net-conf.json's Network the cluster CIDR (kube-controller-manager --cluster-cidr) so that it contains every node's podCIDR, "+
				"then restart kube-flannel; Flannel's kube subnet manager gives each node its podCIDR.")
			ev = append(ev, diag.Ev("podCIDRs outside Network", "none", diag.JoinCapped(outside)))
		}
	}
	cni, ok := cm.Data["cni-conf.json"]
	if !ok {
		problems = append(problems, "no cni-conf.json")
	} else {
		var conf struct {
			CNIVersion string `json:"cniVersion"`
		}
		if err := json.Unmarshal([]byte(cni), &conf); err != nil {
			problems = append(problems, "cni-conf.json does not parse: "+err.Error())
		}
		ev = append(ev, diag.Ev("cni-conf.json cniVersion", strings.Join(cniVersions, " or "), orQuoted(conf.CNIVersion)))
		needsVersion := true
		if sv, _, err := kube.ServerVersion(v); err == nil && !sv.AtLeast(version.MajorMinor(1, 16)) {
			needsVersion = false
		}
		switch {
		case conf.CNIVersion == "" && needsVersion:
			problems = append(problems, "cni-conf.json has no cniVersion, which the kubelet requires since Kubernetes 1.16 (the node stays NotReady: cni config uninitialized)")
			fixes = append(fixes, `Add "cniVersion": "0.3.1" at the top of cni-conf.json and restart kube-flannel.`)
		case conf.CNIVersion != "" && !slices.Contains(cniVersions, conf.CNIVersion):
			problems = append(problems, fmt.Sprintf("cni-conf.json cniVersion %q is not one the kubelet's CNI library supports", conf.CNIVersion))
			fixes = append(fixes, `Set "cniVersion": "0.3.1" in cni-conf.json and restart kube-flannel.`)
		}
	}
	if len(problems) == 0 {
		res := diag.Pass("Flannel's network %s contains every podCIDR and its CNI config has cniVersion", strings.Join(prefixStrings(network), ", "))
		res.Evidence = ev
		return res
	}
	res := diag.Fail("Flannel (ConfigMap %s/%s): %s", cm.Namespace, cm.Name, strings.Join(problems, "; "))
	res.Evidence = ev
	res.Remediation = strings.Join(fixes, "\n")
	if res.Remediation == "" {
		res.Remediation = fmt.Sprintf("Restore ConfigMap %s/%s from the Flannel release manifest (net-conf.json with the cluster CIDR as Network, cni-conf.json with cniVersion 0.3.1).", cm.Namespace, cm.Name)
	}
	return res
}

func coveredByAny(c netip.Prefix, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Bits() <= c.Bits() && p.Contains(c.Addr()) {
			return true
		}
	}
	return false
}

func orQuoted(s string) string {
	if s == "" {
		return "absent"
	}
	return fmt.Sprintf("%q", s)
}
