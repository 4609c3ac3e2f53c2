package vnode

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// The ways a pod mounts Alibaba Cloud NAS: the CSI driver, the older
// FlexVolume driver, or plain NFS to the file system's mount target.
const (
	nasCSIDriver  = "nasplugin.csi.alibabacloud.com"
	nasFlexDriver = "alicloud/nas"
	nasDomain     = ".nas.aliyuncs.com"
)

func runNASFSGroup(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	if r := canceled(ctx); r != nil {
		return r
	}
	out := evaluateNASFSGroup(ctx, s.Nodes, s.PodsWithDetail(), s.PersistentVolumes, listedDeployments(s), s.NodeFacts())
	return noteUnread(out, s, kube.PartPersistentVolumes, "NAS mounted through a PersistentVolumeClaim is not seen")
}

// nasVolume describes v when it is NAS, "" otherwise; a claim is looked up
// in the PVs by the claim they are bound to.
func nasVolume(ns string, v kube.PodVolume, pvByClaim map[string]*kube.PersistentVolume) string {
	if v.ClaimName != "" {
		pv := pvByClaim[ns+"/"+v.ClaimName]
		if pv == nil {
			return ""
		}
		what := nasSource(pv.CSIDriver, pv.FlexDriver, pv.Server)
		if what == "" {
			return ""
		}
		return fmt.Sprintf("claim %s, PV %s, %s", v.ClaimName, pv.Name, what)
	}
	return nasSource(v.CSIDriver, v.FlexDriver, v.Server)
}

func nasSource(csi, flex, server string) string {
	var what string
	switch {
	case csi == nasCSIDriver:
		what = "CSI " + csi
	case flex == nasFlexDriver:
		what = "FlexVolume " + flex
	case csi == "" && flex == "" && strings.HasSuffix(strings.ToLower(server), nasDomain):
		what = "NFS"
	default:
		return ""
	}
	if server != "" {
		what += " server " + server
	}
	return what
}

// evaluateNASFSGroup finds the pods on VNodes that mount NAS with fsGroup
// set and fsGroupChangePolicy not OnRootMismatch: at every start the
// kubelet changes the group of every file on the volume, which on a large
// NAS file system takes long enough that the pod fails to start in time.
func evaluateNASFSGroup(ctx context.Context, nodes []*corev1.Node, pods []kube.Pod, pvs []kube.PersistentVolume, deps []*appsv1.Deployment, facts *kube.NodeFacts) []*pb.Result {
	vns := vnodesOf(nodes, facts)
	if len(vns) == 0 {
		return []*pb.Result{noVNode(len(nodes))}
	}
	isVN := nameSet(vns)
	pvByClaim := map[string]*kube.PersistentVolume{}
	for i := range pvs {
		if pv := &pvs[i]; pv.ClaimName != "" && pv.Phase == corev1.VolumeBound {
			pvByClaim[pv.ClaimNamespace+"/"+pv.ClaimName] = pv
		}
	}
	depByName := deploymentNames(deps)
	poll := diag.NewPoll(ctx)
	var out []*pb.Result
	for i := range pods {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		p := &pods[i]
		st := p.Storage()
		if st == nil || !isVN[p.NodeName] {
			continue
		}
		var vols, names []string
		for _, v := range st.Volumes {
			if what := nasVolume(p.Namespace, v, pvByClaim); what != "" {
				vols = append(vols, v.Name+" ("+what+")")
				names = append(names, v.Name)
			}
		}
		if len(vols) == 0 {
			continue
		}
		policy := string(st.FSGroupChangePolicy)
		if policy == "" {
			policy = "unset (Always)"
		}
		res := diag.Warn("pod %s/%s on VNode %s mounts NAS volume(s) %s with fsGroup %d and fsGroupChangePolicy %s: every start changes the group of every file on the NAS",
			p.Namespace, p.Name, p.NodeName, strings.Join(names, ", "), st.FSGroup, policy)
		res.Objects = []*pb.Object{diag.Obj("Pod", p.Namespace, p.Name)}
		res.Evidence = []*pb.Evidence{
			diag.Ev("NAS volumes", "", strings.Join(vols, "; ")),
			diag.Ev("securityContext.fsGroupChangePolicy", string(corev1.FSGroupChangeOnRootMismatch), policy),
		}
		res.Remediation = fsGroupFix(p, depByName)
		out = append(out, res)
	}
	if len(out) == 0 {
		return []*pb.Result{diag.Pass("no pod on the %d VNode(s) mounts NAS with fsGroup and without fsGroupChangePolicy OnRootMismatch", len(vns))}
	}
	return sortResults(out)
}

func fsGroupFix(p *kube.Pod, depByName deploymentSet) string {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"securityContext": map[string]any{"fsGroupChangePolicy": corev1.FSGroupChangeOnRootMismatch}}}}})
	why := "With OnRootMismatch the kubelet changes ownership only when the volume's root does not already match fsGroup, " +
		"so a NAS that was set up once is not walked again at every start."
	kind, name := workloadOf(p, depByName)
	switch kind {
	case "Deployment", "StatefulSet", "ReplicaSet", "DaemonSet":
		return fmt.Sprintf("kubectl -n %s patch %s %s --type=strategic -p '%s'\n%s", p.Namespace, strings.ToLower(kind), name, patch, why)
	case "":
		return fmt.Sprintf("Recreate pod %s/%s with spec.securityContext.fsGroupChangePolicy: OnRootMismatch. %s", p.Namespace, p.Name, why)
	}
	return fmt.Sprintf("Set spec.template.spec.securityContext.fsGroupChangePolicy: OnRootMismatch in %s %s/%s. %s", kind, p.Namespace, name, why)
}
