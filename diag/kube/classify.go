package kube

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// NodeClass is what a node is in a hybrid cluster.
type NodeClass string

const (
	// ClassECS is an Alibaba Cloud ECS instance (managed by the cloud controller manager).
	ClassECS NodeClass = "ecs"
	// ClassOnPrem is a node in the on-prem data centre.
	ClassOnPrem NodeClass = "on-prem"
	// ClassVirtual is a VNode (virtual-kubelet backed by ECI).
	ClassVirtual NodeClass = "vnode"
)

// Labels and taints that mark a VNode, in both conventions the vendor uses.
const (
	LabelType         = "type"
	LabelTypeVirtual  = "virtual-kubelet"
	LabelVNode        = "k8s.aliyun.com/vnode"
	TaintVKProvider   = "virtual-kubelet.io/provider"
	TaintVNode        = "k8s.aliyun.com/vnode"
	labelInstanceType = "node.kubernetes.io/instance-type"
	labelNodePoolID   = "alibabacloud.com/nodepool-id"
	labelAckNodePool  = "alibabacloud.com/nodepool-name"
)

// Classification is the class of a node and why.
type Classification struct {
	Class  NodeClass
	Reason string
}

// Classify decides whether n is a VNode, an ECS instance or an on-prem node.
// Labels decide VNodes; a providerID that names an ECS instance, or an ECS
// instance type / ACK node-pool label, decides ECS; everything else is
// on-prem.
func Classify(n *corev1.Node) Classification {
	class, by, key, value := classify(n)
	var reason string
	switch by {
	case byLabel:
		reason = fmt.Sprintf("label %s=%s", key, value)
	case byTaint:
		reason = fmt.Sprintf("taint %s", value)
	case byECSProviderID:
		reason = fmt.Sprintf("providerID %q names an ECS instance", value)
	case byInstanceType:
		reason = fmt.Sprintf("label %s=%s is an ECS instance type", key, value)
	case byNodePool:
		reason = fmt.Sprintf("label %s=%s marks an Alibaba Cloud node pool", key, value)
	case byOtherProviderID:
		reason = fmt.Sprintf("providerID %q is not an ECS instance", value)
	default:
		reason = "no providerID and no ECS labels"
	}
	return Classification{class, reason}
}

// ClassOf is Classify's class alone, without formatting the reason: what
// checks that walk every node (for every pod) ask.
func ClassOf(n *corev1.Node) NodeClass {
	class, _, _, _ := classify(n)
	return class
}

// What decided a node's class.
const (
	byNothing = iota
	byLabel
	byTaint
	byECSProviderID
	byInstanceType
	byNodePool
	byOtherProviderID
)

// classify is Classify's decision: the class, what decided it, and the
// key and value the reason names.
func classify(n *corev1.Node) (class NodeClass, by int, key, value string) {
	switch {
	case n.Labels[LabelType] == LabelTypeVirtual:
		return ClassVirtual, byLabel, LabelType, LabelTypeVirtual
	case n.Labels[LabelVNode] == "true":
		return ClassVirtual, byLabel, LabelVNode, "true"
	}
	for _, t := range n.Spec.Taints {
		if t.Key == TaintVKProvider || (t.Key == TaintVNode && t.Value == "true") {
			return ClassVirtual, byTaint, t.Key, t.Key + "=" + t.Value + ":" + string(t.Effect)
		}
	}
	id := n.Spec.ProviderID
	if strings.Contains(id, "i-") && !strings.Contains(id, "://") || strings.HasPrefix(id, AlicloudScheme) {
		return ClassECS, byECSProviderID, "", id
	}
	if it := n.Labels[labelInstanceType]; strings.HasPrefix(it, "ecs.") {
		return ClassECS, byInstanceType, labelInstanceType, it
	}
	for _, l := range []string{labelNodePoolID, labelAckNodePool} {
		if v, ok := n.Labels[l]; ok {
			return ClassECS, byNodePool, l, v
		}
	}
	if id != "" {
		return ClassOnPrem, byOtherProviderID, "", id
	}
	return ClassOnPrem, byNothing, "", ""
}

// AlicloudScheme is the optional prefix the cloud controller manager accepts.
const AlicloudScheme = "alicloud://"

var (
	regionRe   = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)+$`)
	instanceRe = regexp.MustCompile(`^i-[a-z0-9]{8,}$`)
)

// ProviderID is a parsed ECS providerID.
type ProviderID struct {
	Region   string
	Instance string
}

// ParseProviderID parses "<region-id>.<instance-id>", optionally prefixed
// with "alicloud://", and says exactly what is wrong otherwise.
func ParseProviderID(s string) (ProviderID, error) {
	if s == "" {
		return ProviderID{}, fmt.Errorf("providerID is empty")
	}
	rest := strings.TrimPrefix(s, AlicloudScheme)
	if i := strings.Index(rest, "://"); i >= 0 {
		return ProviderID{}, fmt.Errorf("providerID %q: scheme %q is not %q", s, rest[:i+3], AlicloudScheme)
	}
	region, inst, ok := strings.Cut(rest, ".")
	if !ok {
		if instanceRe.MatchString(rest) {
			return ProviderID{}, fmt.Errorf("providerID %q: missing region (want <region-id>.%s)", s, rest)
		}
		return ProviderID{}, fmt.Errorf("providerID %q: want <region-id>.<instance-id>", s)
	}
	if !regionRe.MatchString(region) {
		return ProviderID{}, fmt.Errorf("providerID %q: %q is not a region ID (e.g. cn-shanghai)", s, region)
	}
	if !instanceRe.MatchString(inst) {
		return ProviderID{}, fmt.Errorf("providerID %q: %q is not an ECS instance ID (i-...)", s, inst)
	}
	return ProviderID{Region: region, Instance: inst}, nil
}

// PodCIDRStrings is a node's spec.podCIDRs, or its spec.podCIDR alone when
// podCIDRs is empty (servers before 1.16 have no podCIDRs).
func PodCIDRStrings(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return n.Spec.PodCIDRs
}

// PodCIDRs parses PodCIDRStrings, masked; entries that are not CIDRs are
// left out (k8s.podcidr-assigned reports them).
func PodCIDRs(n *corev1.Node) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range PodCIDRStrings(n) {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
