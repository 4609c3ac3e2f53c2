package k8s

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// knownPodAnnotations are the annotations under kubernetes.io and k8s.io
// that Kubernetes defines for pods (the "Well-Known Labels, Annotations
// and Taints" reference, deprecated ones included: they are defined, if
// old). A key that ends in "/" is a prefix: the part after it names a
// container.
var knownPodAnnotations = []string{
	"batch.kubernetes.io/cronjob-scheduled-timestamp",
	"batch.kubernetes.io/job-completion-index",
	"cluster-autoscaler.kubernetes.io/safe-to-evict",
	"cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes",
	"container.apparmor.security.beta.kubernetes.io/",
	"container.seccomp.security.alpha.kubernetes.io/",
	"controller.kubernetes.io/pod-deletion-cost",
	"experimental.windows.kubernetes.io/isolation-type",
	"image-policy.k8s.io/break-glass",
	"alpha.image.policy.k8s.io/failed-open",
	"kubeadm.kubernetes.io/etcd.advertise-client-urls",
	"kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint",
	"kubectl.kubernetes.io/default-container",
	"kubectl.kubernetes.io/default-logs-container",
	"kubectl.kubernetes.io/last-applied-configuration",
	"kubectl.kubernetes.io/restartedAt",
	"kubernetes.io/change-cause",
	"kubernetes.io/config.hash",
	"kubernetes.io/config.mirror",
	"kubernetes.io/config.seen",
	"kubernetes.io/config.source",
	"kubernetes.io/description",
	"kubernetes.io/egress-bandwidth",
	"kubernetes.io/ingress-bandwidth",
	"kubernetes.io/limit-ranger",
	"kubernetes.io/psp",
	"pod-security.kubernetes.io/enforce-policy",
	"pod-security.kubernetes.io/exempt",
	"scheduler.alpha.kubernetes.io/critical-pod",
	"seccomp.security.alpha.kubernetes.io/pod",
	"security.alpha.kubernetes.io/sysctls",
	"security.alpha.kubernetes.io/unsafe-sysctls",
}

// reservedDomain reports whether an annotation key's prefix lies in a
// domain Kubernetes reserves: kubernetes.io or k8s.io, or a subdomain.
func reservedDomain(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	for _, d := range []string{"kubernetes.io", "k8s.io"} {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return true
		}
	}
	return false
}

func knownAnnotation(key string) bool {
	for _, k := range knownPodAnnotations {
		if prefix, ok := strings.CutSuffix(k, "/"); ok {
			if strings.HasPrefix(key, prefix+"/") && len(key) > len(k) {
				return true
			}
		} else if key == k {
			return true
		}
	}
	return false
}

// evalReservedAnnotations warns about every workload whose pod template
// sets annotations in the kubernetes.io or k8s.io domains that Kubernetes
// does not define: reserved keys may be given a meaning by a later release
// (or by the VNode components, which pass pod annotations on to ECI), and
// a typo of a real one is silently ignored.
func evalReservedAnnotations(ctx context.Context, deps []*appsv1.Deployment, dss []*appsv1.DaemonSet) []*pb.Result {
	type workload struct {
		kind, ns, name string
		tmpl           *corev1.PodTemplateSpec
	}
	var all []workload
	for _, d := range deps {
		all = append(all, workload{"Deployment", d.Namespace, d.Name, &d.Spec.Template})
	}
	for _, ds := range dss {
		all = append(all, workload{"DaemonSet", ds.Namespace, ds.Name, &ds.Spec.Template})
	}
	poll := diag.NewPoll(ctx)
	var out []*pb.Result
	for _, w := range all {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		var bad []string
		for k := range w.tmpl.Annotations {
			if reservedDomain(k) && !knownAnnotation(k) {
				bad = append(bad, k)
			}
		}
		if len(bad) == 0 {
			continue
		}
		sort.Strings(bad)
		r := diag.Warn("%s %s/%s sets pod annotation(s) %s in a domain Kubernetes reserves (kubernetes.io, k8s.io) that Kubernetes does not define",
			w.kind, w.ns, w.name, strings.Join(bad, ", "))
		r.Objects = []*pb.Object{diag.Obj(w.kind, w.ns, w.name)}
		for _, k := range bad {
			r.Evidence = append(r.Evidence, diag.Ev("spec.template.metadata.annotations "+k, "undefined keys only outside kubernetes.io and k8s.io", fmt.Sprintf("%q", w.tmpl.Annotations[k])))
		}
		r.Remediation = fmt.Sprintf("Rename the annotation(s) into a domain you own (e.g. example.com/%s), or correct a typo of a defined one "+
			"(kubectl.kubernetes.io/restartedAt, cluster-autoscaler.kubernetes.io/safe-to-evict ...). To drop them: "+
			"kubectl -n %s patch %s %s --type=merge -p '%s'", keyName(bad[0]), w.ns, strings.ToLower(w.kind), w.name, removalPatch(bad))
		out = append(out, r)
	}
	if len(out) == 0 {
		return []*pb.Result{diag.Pass("no pod template of the %d Deployments and DaemonSets sets an undefined kubernetes.io or k8s.io annotation", len(all))}
	}
	return out
}

func keyName(k string) string {
	_, name, _ := strings.Cut(k, "/")
	return name
}

func removalPatch(keys []string) string {
	var b strings.Builder
	b.WriteString(`{"spec":{"template":{"metadata":{"annotations":{`)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q:null", k)
	}
	b.WriteString("}}}}}")
	return b.String()
}
