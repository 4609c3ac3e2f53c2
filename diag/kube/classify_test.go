package kube

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseProviderID(t *testing.T) {
	cases := []struct {
		in, region, instance, err string
	}{
		{"cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "cn-shanghai", "i-uf6f5lbqvn1l8dfnbzj1", ""},
		{"alicloud://cn-hangzhou.i-bp1abcdefgh12345", "cn-hangzhou", "i-bp1abcdefgh12345", ""},
		{"ap-southeast-1.i-t4n0123456789abcd", "ap-southeast-1", "i-t4n0123456789abcd", ""},
		{"", "", "", "providerID is empty"},
		{"i-uf6f5lbqvn1l8dfnbzj1", "", "", "missing region"},
		{"cn-shanghai/i-uf6f5lbqvn1l8dfnbzj1", "", "", "want <region-id>.<instance-id>"},
		{"aws:///us-east-1a/i-0abc", "", "", `scheme "aws://" is not "alicloud://"`},
		{"CN-SHANGHAI.i-uf6f5lbqvn1l8dfnbzj1", "", "", "is not a region ID"},
		{"cn-shanghai.instance-1", "", "", "is not an ECS instance ID"},
		{"cn-shanghai.i-short", "", "", "is not an ECS instance ID"},
	}
	for _, c := range cases {
		got, err := ParseProviderID(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseProviderID(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got.Region != c.region || got.Instance != c.instance {
			t.Errorf("ParseProviderID(%q) = %+v, %v", c.in, got, err)
		}
	}
}

// TestClassify: each rule's class and reason, and ClassOf agrees.
func TestClassify(t *testing.T) {
	node := func(labels map[string]string, providerID string, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: labels}, Spec: corev1.NodeSpec{ProviderID: providerID, Taints: taints}}
	}
	cases := []struct {
		n      *corev1.Node
		class  NodeClass
		reason string
	}{
		{node(map[string]string{"type": "virtual-kubelet"}, ""), ClassVirtual, "label type=virtual-kubelet"},
		{node(map[string]string{"k8s.aliyun.com/vnode": "true"}, ""), ClassVirtual, "label k8s.aliyun.com/vnode=true"},
		{node(nil, "", corev1.Taint{Key: TaintVKProvider, Value: "alibabacloud", Effect: corev1.TaintEffectNoSchedule}), ClassVirtual,
			"taint virtual-kubelet.io/provider=alibabacloud:NoSchedule"},
		{node(nil, "cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1"), ClassECS, `providerID "cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1" names an ECS instance`},
		{node(map[string]string{"node.kubernetes.io/instance-type": "ecs.g7.large"}, ""), ClassECS, "label node.kubernetes.io/instance-type=ecs.g7.large is an ECS instance type"},
		{node(map[string]string{"alibabacloud.com/nodepool-id": "np1"}, ""), ClassECS, "label alibabacloud.com/nodepool-id=np1 marks an Alibaba Cloud node pool"},
		{node(nil, "kind://docker/kind/n"), ClassOnPrem, `providerID "kind://docker/kind/n" is not an ECS instance`},
		{node(nil, ""), ClassOnPrem, "no providerID and no ECS labels"},
	}
	for _, c := range cases {
		got := Classify(c.n)
		if got.Class != c.class || got.Reason != c.reason || ClassOf(c.n) != c.class {
			t.Errorf("Classify = %+v, ClassOf = %s; want %s %q", got, ClassOf(c.n), c.class, c.reason)
		}
	}
}
