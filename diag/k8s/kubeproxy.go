package k8s

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Limits of k8s.kube-proxy. IPVS keeps a UDP connection entry for
// udpTimeout (the kernel's 300 s when kube-proxy leaves it at 0): after a
// CoreDNS pod is replaced, clients keep sending DNS queries to its old
// address until the entry expires. A conntrack table of maxPerCore x cores
// entries fills on busy nodes below 65536 per core.
const (
	ipvsUDPTimeoutMax  = 300 * time.Second
	kernelUDPTimeout   = 300 * time.Second
	minMaxPerCore      = 65536
	defaultMaxPerCore  = 32768
	suggestedUDPTimout = "10s"
)

// kubeProxyConfig is the part of a KubeProxyConfiguration the check reads.
type kubeProxyConfig struct {
	Kind string `json:"kind"`
	Mode string `json:"mode"`
	IPVS struct {
		Scheduler  string          `json:"scheduler"`
		UDPTimeout metav1.Duration `json:"udpTimeout"`
	} `json:"ipvs"`
	Conntrack struct {
		MaxPerCore *int32 `json:"maxPerCore"`
	} `json:"conntrack"`
}

// kubeProxyKey is the ConfigMap key that holds the configuration: the one
// that declares a KubeProxyConfiguration, else config.conf (kubeadm, ACK).
func kubeProxyKey(cm *corev1.ConfigMap) string {
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.Contains(cm.Data[k], "kind: KubeProxyConfiguration") {
			return k
		}
	}
	return "config.conf"
}

// evalKubeProxy judges each kube-proxy ConfigMap: its mode and IPVS
// scheduler are always reported; an IPVS udpTimeout of 300 s or more, and a
// conntrack maxPerCore below 65536, WARN.
func evalKubeProxy(cms []*corev1.ConfigMap) []*pb.Result {
	if len(cms) == 0 {
		return []*pb.Result{diag.Skip("no kube-proxy ConfigMap in kube-system (kube-proxy, kube-proxy-worker or kube-proxy-master): kube-proxy is configured by flags or not used")}
	}
	var out []*pb.Result
	for _, cm := range cms {
		out = append(out, kubeProxyResult(cm))
	}
	return out
}

func kubeProxyResult(cm *corev1.ConfigMap) *pb.Result {
	obj := []*pb.Object{diag.Obj("ConfigMap", cm.Namespace, cm.Name)}
	key := kubeProxyKey(cm)
	src, ok := cm.Data[key]
	if !ok {
		r := diag.Skip("ConfigMap %s/%s holds no KubeProxyConfiguration (no key %s)", cm.Namespace, cm.Name, key)
		r.Objects = obj
		return r
	}
	var c kubeProxyConfig
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		r := diag.Errorf("cannot parse %s of ConfigMap %s/%s: %v", key, cm.Namespace, cm.Name, err)
		r.Objects = obj
		r.Remediation = "kube-proxy cannot start with this file either: fix its YAML."
		return r
	}
	mode := c.Mode
	if mode == "" {
		mode = "iptables"
	}
	ev := []*pb.Evidence{diag.Ev("mode", "", mode)}
	var warns, fixes []string
	if mode == "ipvs" {
		sched := c.IPVS.Scheduler
		if sched == "" {
			sched = "rr"
		}
		ev = append(ev, diag.Ev("ipvs.scheduler", "", sched))
		udp, obs := c.IPVS.UDPTimeout.Duration, c.IPVS.UDPTimeout.Duration.String()
		if udp == 0 {
			udp, obs = kernelUDPTimeout, "0s (left to the kernel: 300s)"
		}
		ev = append(ev, diag.Ev("ipvs.udpTimeout", "< "+ipvsUDPTimeoutMax.String(), obs))
		if udp >= ipvsUDPTimeoutMax {
			warns = append(warns, fmt.Sprintf("IPVS udpTimeout is %s: for that long after a CoreDNS pod changes, DNS queries still go to its old address", udp))
			fixes = append(fixes, "ipvs:\n  udpTimeout: "+suggestedUDPTimout)
		}
	}
	per := int64(defaultMaxPerCore)
	perObs := fmt.Sprintf("unset (kube-proxy's default %d)", defaultMaxPerCore)
	if c.Conntrack.MaxPerCore != nil {
		per, perObs = int64(*c.Conntrack.MaxPerCore), fmt.Sprint(*c.Conntrack.MaxPerCore)
	}
	if per == 0 {
		perObs = "0 (the kernel's nf_conntrack_max is left as it is)"
	}
	ev = append(ev, diag.Ev("conntrack.maxPerCore", fmt.Sprintf(">= %d", minMaxPerCore), perObs))
	if per != 0 && per < minMaxPerCore {
		warns = append(warns, fmt.Sprintf("conntrack maxPerCore is %d: the conntrack table fills on busy nodes and new connections are dropped", per))
		fixes = append(fixes, fmt.Sprintf("conntrack:\n  maxPerCore: %d", minMaxPerCore))
	}
	var r *pb.Result
	if len(warns) == 0 {
		r = diag.Pass("kube-proxy (ConfigMap %s/%s) runs in %s mode with suitable timeouts and conntrack limits", cm.Namespace, cm.Name, mode)
	} else {
		r = diag.Warn("kube-proxy (ConfigMap %s/%s, %s mode): %s", cm.Namespace, cm.Name, mode, strings.Join(warns, "; "))
		r.Remediation = fmt.Sprintf("Set in %s of ConfigMap %s/%s (`kubectl -n %s edit configmap %s`):\n%s\n"+
			"then restart kube-proxy so it reads them (`kubectl -n %s rollout restart daemonset %s`). host.conntrack shows the table's fill on a node.",
			key, cm.Namespace, cm.Name, cm.Namespace, cm.Name, strings.Join(fixes, "\n"), cm.Namespace, cm.Name)
	}
	r.Objects = obj
	r.Evidence = ev
	return r
}
