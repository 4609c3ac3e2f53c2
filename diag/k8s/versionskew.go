package k8s

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
	kversion "k8s.io/apimachinery/pkg/version"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// allowedKubeletSkew is how many minor versions a kubelet may be older than
// the API server: three since Kubernetes 1.28, two before. It is never
// allowed to be newer.
func allowedKubeletSkew(server *version.Version) uint {
	if server.AtLeast(version.MajorMinor(1, 28)) {
		return 3
	}
	return 2
}

// skewGroup is the nodes whose kubelets report one minor version.
type skewGroup struct {
	minor   string
	problem string // "" within the policy
	nodes   []string
	virtual bool
	shown   map[string]bool
}

// evalVersionSkew judges every kubelet (VNodes' virtual-kubelets included)
// against the API server by the Kubernetes version skew policy, one result
// per kubelet minor version out of it.
func evalVersionSkew(ctx context.Context, v *kversion.Info, nodes []*corev1.Node) []*pb.Result {
	server, shown, err := kube.ServerVersion(v)
	if err != nil {
		r := diag.Warn("cannot judge the kubelets' version skew: %v", err)
		r.Evidence = []*pb.Evidence{diag.Ev("API server version", "a Kubernetes release", orQuoted(shown))}
		r.Remediation = "Look up the control plane's release by other means (the kube-apiserver image tag); every kubelet must be at most " +
			"three minor versions older (two before 1.28) and never newer."
		return []*pb.Result{r}
	}
	allowed := allowedKubeletSkew(server)
	poll := diag.NewPoll(ctx)
	groups := map[string]*skewGroup{}
	var unreadable []string
	for _, n := range sortedNodes(nodes) {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		raw := n.Status.NodeInfo.KubeletVersion
		kv, err := kube.KubeletVersion(raw)
		if err != nil {
			unreadable = append(unreadable, fmt.Sprintf("%s (%s)", n.Name, orQuoted(raw)))
			continue
		}
		key := fmt.Sprintf("%d.%d", kv.Major(), kv.Minor())
		g := groups[key]
		if g == nil {
			g = &skewGroup{minor: key, shown: map[string]bool{}}
			switch {
			case kv.Major() != server.Major() || kv.Minor() > server.Minor():
				g.problem = fmt.Sprintf("newer than the API server %s", shown)
			case server.Minor()-kv.Minor() > allowed:
				g.problem = fmt.Sprintf("%d minor versions older than the API server %s (at most %d allowed)", server.Minor()-kv.Minor(), shown, allowed)
			}
			groups[key] = g
		}
		g.nodes = append(g.nodes, n.Name)
		g.shown[raw] = true
		if kube.ClassOf(n) == kube.ClassVirtual {
			g.virtual = true
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := version.MustParseGeneric(keys[i]), version.MustParseGeneric(keys[j])
		return a.LessThan(b)
	})
	var out []*pb.Result
	var ok []string
	for _, k := range keys {
		g := groups[k]
		if g.problem == "" {
			ok = append(ok, fmt.Sprintf("v%s (%d)", k, len(g.nodes)))
			continue
		}
		out = append(out, skewResult(g, server, allowed))
	}
	for _, u := range unreadable {
		name, _, _ := strings.Cut(u, " ")
		r := diag.Warn("node %s reports no Kubernetes version for its kubelet: its skew cannot be judged", u)
		r.Objects = []*pb.Object{diag.Obj("Node", "", name)}
		out = append(out, r)
	}
	if len(ok) > 0 {
		r := diag.Pass("kubelets within the version skew policy of API server %s: %s", shown, strings.Join(ok, ", "))
		r.Evidence = []*pb.Evidence{diag.Ev("kubelet minor versions", fmt.Sprintf("%d.%d down to %d.%d", server.Major(), server.Minor(), server.Major(), server.Minor()-min(allowed, server.Minor())), strings.Join(ok, ", "))}
		out = append(out, r)
	}
	if len(out) == 0 {
		out = append(out, diag.Skip("no node in the cluster"))
	}
	return out
}

func skewResult(g *skewGroup, server *version.Version, allowed uint) *pb.Result {
	var versions []string
	for v := range g.shown {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	r := diag.Fail("%d node(s) run kubelet %s, %s: %s", len(g.nodes), strings.Join(versions, ", "), g.problem, diag.JoinFirst(g.nodes, 5))
	for _, n := range g.nodes {
		r.Objects = append(r.Objects, diag.Obj("Node", "", n))
	}
	r.Evidence = []*pb.Evidence{diag.Ev("kubelet version", fmt.Sprintf("v%d.%d to v%d.%d", server.Major(), server.Minor()-min(allowed, server.Minor()), server.Major(), server.Minor()),
		strings.Join(versions, ", ")), diag.Ev("nodes", "", diag.JoinCapped(g.nodes))}
	kv := version.MustParseGeneric(g.minor)
	if kv.Minor() > server.Minor() || kv.Major() != server.Major() {
		r.Remediation = fmt.Sprintf("A kubelet must never be newer than the API server. Upgrade the control plane to v%s first, one minor version at a time (%s), "+
			"or reinstall these nodes with the control plane's release.", g.minor, minorPath(server, kv))
		return r
	}
	path := minorPath(kv, server)
	r.Remediation = fmt.Sprintf("Upgrade the kubelets one minor version at a time, %s, draining each node before its upgrade (kubeadm upgrade node, then the kubelet package).", path)
	if g.virtual {
		r.Remediation += fmt.Sprintf(" For VNodes, upgrade the VNode component (ack-virtual-node / virtual-kubelet) to the release for v%d.%d.", server.Major(), server.Minor())
	}
	return r
}

// minorPath lists the minor versions from a to b, one at a time.
func minorPath(a, b *version.Version) string {
	steps := []string{fmt.Sprintf("%d.%d", a.Major(), a.Minor())}
	for m := a.Minor() + 1; m <= b.Minor() && len(steps) < 12; m++ {
		steps = append(steps, fmt.Sprintf("%d.%d", a.Major(), m))
	}
	return strings.Join(steps, " -> ")
}
