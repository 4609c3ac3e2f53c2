package k8s

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kversion "k8s.io/apimachinery/pkg/version"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

var v137 = &kversion.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2"}

func TestCNIIPAM(t *testing.T) {
	nodes := []*corev1.Node{
		kubelab.OnPremNode("dc-1", "10.244.0.0/24", ""),
		kubelab.OnPremNode("dc-2", "172.21.1.0/24", ""),
		kubelab.VNode("vk-1", "type"),
	}
	ranges := kubelab.CalicoConfig(`{"type": "host-local", "ranges": [[{"subnet": "usePodCidr"}], [{"subnet": "usePodCidrIPv6"}]]}`)
	fixed := kubelab.CalicoConfig(`{"type": "host-local", "subnet": "10.244.0.0/16"}`)
	broken := kubelab.CalicoConfig(`{"type": "calico-ipam"`)
	noKey := kubelab.CalicoConfig(kubelab.CalicoIPAM)
	delete(noKey.Data, "cni_network_config")
	cases := []struct {
		name string
		cms  []*corev1.ConfigMap
		v    *kversion.Info
		want string
		sum  string
		fix  string
	}{
		{"none", nil, v137, "SKIP", "no ConfigMap calico-config or kube-flannel-cfg", ""},
		{"calico host-local", []*corev1.ConfigMap{kubelab.CalicoConfig(kubelab.CalicoHostLocal)}, v137, "PASS", "Calico allocates pod IPs from each node's podCIDR", ""},
		{"calico ranges", []*corev1.ConfigMap{ranges}, v137, "PASS", "Calico allocates pod IPs from each node's podCIDR", ""},
		{"calico-ipam", []*corev1.ConfigMap{kubelab.CalicoConfig(kubelab.CalicoIPAM)}, v137, "FAIL",
			`Calico allocates pod IPs with IPAM "calico-ipam", not from each node's podCIDR: pod IPs leave the ranges the cloud routes and BGP carry (the cause of k8s.pod-ip-in-podcidr failures)`,
			`"ipam": {"type": "host-local", "subnet": "usePodCidr"}`},
		{"fixed subnet", []*corev1.ConfigMap{fixed}, v137, "FAIL", "Calico allocates pod IPs with host-local IPAM with a fixed subnet", "rollout restart daemonset calico-node"},
		{"broken template", []*corev1.ConfigMap{broken}, v137, "ERROR", "cannot parse cni_network_config of ConfigMap kube-system/calico-config", ""},
		{"no cni_network_config", []*corev1.ConfigMap{noKey}, v137, "WARN", "calico-config has no cni_network_config", ""},
		{"flannel good", []*corev1.ConfigMap{kubelab.FlannelConfig("kube-flannel", "10.244.0.0/16", kubelab.FlannelCNIConf("0.3.1"))},
			&kversion.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2"}, "FAIL", "Flannel (ConfigMap kube-flannel/kube-flannel-cfg): 1 podCIDR(s) outside Network 10.244.0.0/16: dc-2 172.21.1.0/24", "net-conf.json's Network"},
		{"flannel network", []*corev1.ConfigMap{kubelab.FlannelConfig("kube-system", "0.0.0.0/0", kubelab.FlannelCNIConf("0.3.1"))}, v137, "PASS",
			"Flannel's network 0.0.0.0/0 contains every podCIDR and its CNI config has cniVersion", ""},
		{"flannel no cniVersion", []*corev1.ConfigMap{kubelab.FlannelConfig("kube-system", "0.0.0.0/0", kubelab.FlannelCNIConf(""))}, v137, "FAIL",
			"Flannel (ConfigMap kube-system/kube-flannel-cfg): cni-conf.json has no cniVersion, which the kubelet requires since Kubernetes 1.16", `"cniVersion": "0.3.1"`},
		{"flannel no cniVersion on 1.15", []*corev1.ConfigMap{kubelab.FlannelConfig("kube-system", "0.0.0.0/0", kubelab.FlannelCNIConf(""))},
			&kversion.Info{Major: "1", Minor: "15", GitVersion: "v1.15.12"}, "PASS", "Flannel's network", ""},
		{"flannel odd cniVersion", []*corev1.ConfigMap{kubelab.FlannelConfig("kube-system", "0.0.0.0/0", kubelab.FlannelCNIConf("0.2.0"))}, v137, "FAIL",
			`Flannel (ConfigMap kube-system/kube-flannel-cfg): cni-conf.json cniVersion "0.2.0" is not one`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalCNIIPAM(context.Background(), nodes, c.cms, c.v)
			if diagtest.StatusNames(got) != c.want || !strings.HasPrefix(got[0].Summary, c.sum) || !strings.Contains(got[0].Remediation, c.fix) {
				t.Fatalf("got %s\n%s", diagtest.Dump(got), got[0].Remediation)
			}
		})
	}
}

func TestNodeNetwork(t *testing.T) {
	ok := kubelab.ECSNode("ecs-1", "cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "172.22.0.0/24", "")
	ok.Status.Conditions = append(ok.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated"})
	cond := kubelab.ECSNode("ecs-2", "cn-shanghai.i-uf6a1b2c3d4e5f6g7h8i", "172.22.1.0/24", "")
	cond.Status.Conditions = append(cond.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: "NoRouteCreated", Message: "Node created without a route"})
	taint := kubelab.ECSNode("ecs-3", "cn-shanghai.i-uf6a1b2c3d4e5f6g7h9j", "172.22.2.0/24", "")
	taint.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}}
	onprem := kubelab.OnPremNode("dc-1", "172.21.0.0/24", "")
	onprem.Status.Conditions = append(onprem.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue})
	cases := []struct {
		name  string
		nodes []*corev1.Node
		want  string
		sum   string
	}{
		{"no ecs", []*corev1.Node{onprem}, "SKIP", "no ECS node in the cluster"},
		{"route created", []*corev1.Node{ok, onprem}, "PASS", "all 1 ECS node(s) have their network"},
		{"condition", []*corev1.Node{ok, cond}, "FAIL",
			"ECS node ecs-2 has condition NetworkUnavailable=True: the cloud controller manager has not created its VPC route, so its podCIDR \"172.22.1.0/24\" is unreachable from the VPC"},
		{"taint", []*corev1.Node{taint}, "FAIL", "ECS node ecs-3 has taint node.kubernetes.io/network-unavailable:NoSchedule"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalNodeNetwork(context.Background(), c.nodes)
			if diagtest.StatusNames(got) != c.want || !strings.HasPrefix(got[0].Summary, c.sum) {
				t.Fatalf("got %s", diagtest.Dump(got))
			}
		})
	}
}

func TestPodCIDRCapacity(t *testing.T) {
	node := func(name, cidr string, max string) *corev1.Node {
		n := kubelab.OnPremNode(name, cidr, "")
		if max == "" {
			n.Status.Capacity, n.Status.Allocatable = nil, nil
		} else {
			n.Status.Allocatable[corev1.ResourcePods] = resource.MustParse(max)
		}
		return n
	}
	pods := func(nodeName string, n int) []kube.Pod {
		var out []kube.Pod
		for i := 0; i < n; i++ {
			out = append(out, kube.Pod{Namespace: "a", Name: nodeName + string(rune('a'+i%26)) + string(rune('a'+i/26)), NodeName: nodeName, Phase: kube.PhaseRunning})
		}
		return out
	}
	hostNet := kube.Pod{Namespace: "kube-system", Name: "kube-proxy", NodeName: "n26", HostNetwork: true, Phase: kube.PhaseRunning}
	done := kube.Pod{Namespace: "a", Name: "job", NodeName: "n26", Phase: kube.PhaseSucceeded}
	cases := []struct {
		name  string
		nodes []*corev1.Node
		pods  []kube.Pod
		want  string
		sum   string
		fix   string
	}{
		{"roomy", []*corev1.Node{node("n24", "172.21.0.0/24", "110")}, pods("n24", 100), "PASS", "all 1 node(s) have room in their podCIDR for their max pods", ""},
		{"small cidr for max pods", []*corev1.Node{node("n26", "172.21.0.0/26", "110")}, append(pods("n26", 3), hostNet, done), "FAIL",
			"node n26: podCIDR 172.21.0.0/26 has 62 usable addresses but the node admits 110 pods: pods past 62 fail IP allocation (3 in use)",
			"lower the kubelet's maxPods on n26 to at most 62"},
		{"needs a /25", []*corev1.Node{node("n26", "172.21.0.0/26", "110")}, nil, "FAIL", "node n26", "(a /25 holds 126 pods): kube-controller-manager --node-cidr-mask-size=25"},
		{"80 percent", []*corev1.Node{node("n26", "172.21.0.0/26", "60")}, pods("n26", 50), "WARN", "node n26: podCIDR 172.21.0.0/26 is 81 % used (50 of 62 addresses)", ""},
		{"full", []*corev1.Node{node("n27", "172.21.0.0/27", "")}, pods("n27", 30), "FAIL", "node n27: podCIDR 172.21.0.0/27 is full: 30 pods on the pod network, 30 usable addresses", ""},
		{"dual stack: the small range counts", []*corev1.Node{func() *corev1.Node {
			n := node("ds", "172.21.0.0/24", "110")
			n.Spec.PodCIDRs = []string{"172.21.0.0/24", "fd00::/120"}
			return n
		}()}, nil, "PASS", "all 1 node(s)", ""},
		{"vnodes and nodes without podCIDR", []*corev1.Node{kubelab.VNode("vk", "type"), node("none", "", "110")}, nil, "SKIP", "no non-virtual node has a podCIDR", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalPodCIDRCapacity(context.Background(), c.nodes, c.pods, nil, nil)
			if diagtest.StatusNames(got) != c.want || !strings.HasPrefix(got[0].Summary, c.sum) || !strings.Contains(got[0].Remediation, c.fix) {
				t.Fatalf("got %s\n%s", diagtest.Dump(got), got[0].Remediation)
			}
		})
	}
}

func TestKubeProxy(t *testing.T) {
	broken := kubelab.KubeProxyConfig("kube-proxy", "ipvs", "", "")
	broken.Data["config.conf"] = "mode: [ipvs"
	cases := []struct {
		name string
		cms  []*corev1.ConfigMap
		want string
		sum  string
		fix  string
	}{
		{"none", nil, "SKIP", "no kube-proxy ConfigMap", ""},
		{"iptables default", []*corev1.ConfigMap{kubelab.KubeProxyConfig("kube-proxy", "", "", "65536")}, "PASS",
			"kube-proxy (ConfigMap kube-system/kube-proxy) runs in iptables mode", ""},
		{"ipvs tuned", []*corev1.ConfigMap{kubelab.KubeProxyConfig("kube-proxy-worker", "ipvs", "10s", "65536")}, "PASS",
			"kube-proxy (ConfigMap kube-system/kube-proxy-worker) runs in ipvs mode", ""},
		{"ipvs kernel default and default maxPerCore", []*corev1.ConfigMap{kubelab.KubeProxyConfig("kube-proxy", "ipvs", "0s", "")}, "WARN",
			"kube-proxy (ConfigMap kube-system/kube-proxy, ipvs mode): IPVS udpTimeout is 5m0s: for that long after a CoreDNS pod changes, DNS queries still go to its old address; conntrack maxPerCore is 32768",
			"ipvs:\n  udpTimeout: 10s\nconntrack:\n  maxPerCore: 65536\nthen restart kube-proxy"},
		{"ipvs 300s", []*corev1.ConfigMap{kubelab.KubeProxyConfig("kube-proxy", "ipvs", "300s", "0")}, "WARN", "kube-proxy (ConfigMap kube-system/kube-proxy, ipvs mode): IPVS udpTimeout is 5m0s", ""},
		{"iptables small maxPerCore", []*corev1.ConfigMap{kubelab.KubeProxyConfig("kube-proxy", "iptables", "300s", "16384")}, "WARN",
			"kube-proxy (ConfigMap kube-system/kube-proxy, iptables mode): conntrack maxPerCore is 16384", ""},
		{"unparseable", []*corev1.ConfigMap{broken}, "ERROR", "cannot parse config.conf of ConfigMap kube-system/kube-proxy", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalKubeProxy(c.cms)
			if diagtest.StatusNames(got) != c.want || !strings.HasPrefix(got[0].Summary, c.sum) || !strings.Contains(got[0].Remediation, c.fix) {
				t.Fatalf("got %s\n%s", diagtest.Dump(got), got[0].Remediation)
			}
		})
	}
	got := evalKubeProxy([]*corev1.ConfigMap{kubelab.KubeProxyConfig("kube-proxy", "ipvs", "10s", "65536")})
	if !strings.Contains(diagtest.Dump(got), "ipvs.scheduler") {
		t.Errorf("the scheduler is always reported: %s", diagtest.Dump(got))
	}
}

func TestVersionSkew(t *testing.T) {
	node := func(name, v string) *corev1.Node {
		n := kubelab.OnPremNode(name, "172.21.0.0/24", "")
		n.Status.NodeInfo.KubeletVersion = v
		return n
	}
	vn := kubelab.VNode("vk-1", "type")
	vn.Status.NodeInfo.KubeletVersion = "v1.30.4-vk-v2.11.0"
	cases := []struct {
		name  string
		v     *kversion.Info
		nodes []*corev1.Node
		want  string
		sum   string
		fix   string
	}{
		{"within", v137, []*corev1.Node{node("a", "v1.37.2"), node("b", "v1.34.1")}, "PASS",
			"kubelets within the version skew policy of API server v1.37.2: v1.34 (1), v1.37 (1)", ""},
		{"four behind", v137, []*corev1.Node{node("a", "v1.37.2"), node("b", "v1.33.9"), node("c", "v1.33.1")}, "FAIL,PASS",
			"2 node(s) run kubelet v1.33.1, v1.33.9, 4 minor versions older than the API server v1.37.2 (at most 3 allowed): b, c",
			"Upgrade the kubelets one minor version at a time, 1.33 -> 1.34 -> 1.35 -> 1.36 -> 1.37"},
		{"vnode behind", v137, []*corev1.Node{vn}, "FAIL", "1 node(s) run kubelet v1.30.4-vk-v2.11.0, 7 minor versions older", "upgrade the VNode component"},
		{"newer", v137, []*corev1.Node{node("a", "v1.38.0")}, "FAIL", "1 node(s) run kubelet v1.38.0, newer than the API server v1.37.2: a", "Upgrade the control plane to v1.38 first"},
		{"two allowed before 1.28", &kversion.Info{Major: "1", Minor: "27", GitVersion: "v1.27.16"}, []*corev1.Node{node("a", "v1.24.17")}, "FAIL",
			"1 node(s) run kubelet v1.24.17, 3 minor versions older than the API server v1.27.16 (at most 2 allowed): a", ""},
		{"dev build server", &kversion.Info{GitVersion: "v0.0.0-master+$Format:%H$"}, []*corev1.Node{node("a", "v1.30.0")}, "WARN",
			"cannot judge the kubelets' version skew: API server version \"v0.0.0-master+$Format:%H$\" is a build without version information", ""},
		{"unreadable kubelet", v137, []*corev1.Node{node("a", "")}, "WARN", "node a (absent) reports no Kubernetes version for its kubelet", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalVersionSkew(context.Background(), c.v, c.nodes)
			if diagtest.StatusNames(got) != c.want || !strings.HasPrefix(got[0].Summary, c.sum) || !strings.Contains(got[0].Remediation, c.fix) {
				t.Fatalf("got %s\n%s", diagtest.Dump(got), got[0].Remediation)
			}
		})
	}
}

func TestReservedAnnotations(t *testing.T) {
	dep := func(ann map[string]string) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
		d.Spec.Template.Annotations = ann
		return d
	}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "agent"}}
	ds.Spec.Template.Annotations = map[string]string{"node.kubernetes.io/agent-version": "2", "container.apparmor.security.beta.kubernetes.io/agent": "runtime/default"}
	cases := []struct {
		name string
		deps []*appsv1.Deployment
		dss  []*appsv1.DaemonSet
		want string
		sum  string
		fix  string
	}{
		{"defined and foreign", []*appsv1.Deployment{dep(map[string]string{"kubectl.kubernetes.io/restartedAt": "now", "prometheus.io/scrape": "true",
			"k8s.aliyun.com/eci-use-specs": "2-4Gi", "cluster-autoscaler.kubernetes.io/safe-to-evict": "true", "example.x-k8s.io/x": "y"})}, nil, "PASS",
			"no pod template of the 1 Deployments and DaemonSets sets an undefined kubernetes.io or k8s.io annotation", ""},
		{"typo of a defined one", []*appsv1.Deployment{dep(map[string]string{"k8s.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "10M"})}, nil, "WARN",
			"Deployment shop/web sets pod annotation(s) k8s.io/ingress-bandwidth in a domain Kubernetes reserves",
			`kubectl -n shop patch deployment web --type=merge -p '{"spec":{"template":{"metadata":{"annotations":{"k8s.io/ingress-bandwidth":null}}}}}'`},
		{"subdomain", nil, []*appsv1.DaemonSet{ds}, "WARN", "DaemonSet infra/agent sets pod annotation(s) node.kubernetes.io/agent-version", ""},
		{"container prefix needs a container", []*appsv1.Deployment{dep(map[string]string{"container.apparmor.security.beta.kubernetes.io/": "x"})}, nil, "WARN", "Deployment shop/web", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalReservedAnnotations(context.Background(), c.deps, c.dss)
			if diagtest.StatusNames(got) != c.want || !strings.HasPrefix(got[0].Summary, c.sum) || !strings.Contains(got[0].Remediation, c.fix) {
				t.Fatalf("got %s\n%s", diagtest.Dump(got), got[0].Remediation)
			}
		})
	}
	_ = pb.Status_PASS
}
