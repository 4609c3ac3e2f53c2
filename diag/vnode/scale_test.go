package vnode

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// scaleCluster is the size the project must handle: 5,000 nodes (20 of
// them VNodes), 150,000 pods and 300 DaemonSets.
func scaleCluster() ([]*corev1.Node, []*appsv1.DaemonSet, []kube.Pod, []kube.Event) {
	var nodes []*corev1.Node
	for i := 0; i < 4980; i++ {
		nodes = append(nodes, realNode(fmt.Sprintf("node-%04d", i)))
	}
	for i := 0; i < 20; i++ {
		if i%2 == 0 {
			nodes = append(nodes, typeVNode(fmt.Sprintf("vnode-%02d", i)))
		} else {
			nodes = append(nodes, aliyunVNode(fmt.Sprintf("vnode-%02d", i)))
		}
	}
	var dss []*appsv1.DaemonSet
	for i := 0; i < 300; i++ {
		dss = append(dss, testDS(fmt.Sprintf("ns-%d", i%30), fmt.Sprintf("ds-%03d", i), func(s *corev1.PodSpec) {
			switch i % 3 {
			case 0:
				s.Tolerations = tolerateAll
			case 1:
				s.Tolerations = tolerateAll
				s.Affinity = required(term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet"), req("k8s.aliyun.com/vnode", corev1.NodeSelectorOpNotIn, "true")))
			}
		}))
	}
	pods := make([]kube.Pod, 0, 150000)
	for i := 0; i < 150000; i++ {
		p := kube.Pod{Namespace: fmt.Sprintf("ns-%d", i%30), Name: fmt.Sprintf("pod-%06d", i), NodeName: nodes[i%len(nodes)].Name, Phase: kube.PhaseRunning,
			OwnerKind: "ReplicaSet"}
		if i%10 == 0 {
			p.OwnerKind, p.OwnerName = "DaemonSet", fmt.Sprintf("ds-%03d", i%300)
		}
		if i%100 == 7 {
			p.NodeName, p.Phase = "", kube.PhasePending
			p.EnsureDetail().Labels = map[string]string{"burst": "eci"}
			p.EnsureDetail().Scheduling = &kube.PodScheduling{NodeSelector: map[string]string{"type": "virtual-kubelet"}}
		}
		if i%len(nodes) >= 4980 {
			p.EnsureDetail().Waiting = []kube.ContainerWaiting{{Container: "app", Image: "harbor.corp.local:8443/app:1", Reason: "ErrImagePull", Message: x509Msg}}
		}
		pods = append(pods, p)
	}
	var events []kube.Event
	for i := 0; i < 20000; i++ {
		events = append(events, kube.Event{Namespace: "ns-1", Pod: fmt.Sprintf("pod-%06d", i), Reason: "BackOff", Message: "Back-off restarting failed container"})
	}
	return nodes, dss, pods, events
}

// scaleProfile is an eci-profile with one selector that picks pods by label.
var scaleProfile = kube.ParseECIProfile(map[string]string{"vSwitchIds": "vsw-a1", "securityGroupId": "sg-a1",
	"selectors": `[{"name": "burst", "objectLabels": {"matchLabels": {"burst": "eci"}}}]`})

// TestScale bounds the evaluation at the project's largest cluster; the
// bound is loose (machines differ), the point is no O(DaemonSets x pods).
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 150,000-pod cluster")
	}
	nodes, dss, pods, events := scaleCluster()
	ctx := context.Background()
	for name, f := range map[string]func() int{
		"daemonset-affinity": func() int { return len(evaluateDaemonSets(ctx, nodes, dss, pods, nil)) },
		"registry-tls":       func() int { return len(evaluateRegistryTLS(ctx, nodes, pods, events, nil, nil)) },
		"present":            func() int { return len(evaluatePresent(ctx, nodes)) },
		"pod-placement": func() int {
			return len(evaluatePodPlacement(ctx, placementInput{nodes: nodes, pods: pods, events: events, profile: scaleProfile}))
		},
		"eci-profile": func() int { return len(evaluateECIProfile(ctx, scaleProfile, nodes, pods, nil, nil)) },
		"nas-fsgroup": func() int { return len(evaluateNASFSGroup(ctx, nodes, pods, nil, nil, nil)) },
	} {
		start := time.Now()
		n := f()
		d := time.Since(start)
		t.Logf("%s: %d results in %s", name, n, d)
		if d > 5*time.Second {
			t.Errorf("%s took %s on 150,000 pods", name, d)
		}
	}
}

// TestEvaluationsStopSoonAfterTheirContext: on 1,000 nodes (20 VNodes),
// 100,000 pods and 300 DaemonSets, the evaluations look at their context
// regularly and stop at the first look after it ends, with ERROR.
func TestEvaluationsStopSoonAfterTheirContext(t *testing.T) {
	var nodes []*corev1.Node
	for i := 0; i < 980; i++ {
		nodes = append(nodes, realNode(fmt.Sprintf("node-%04d", i)))
	}
	for i := 0; i < 20; i++ {
		nodes = append(nodes, typeVNode(fmt.Sprintf("vnode-%02d", i)))
	}
	var dss []*appsv1.DaemonSet
	for i := 0; i < 300; i++ {
		dss = append(dss, testDS("ns", fmt.Sprintf("ds-%03d", i), func(s *corev1.PodSpec) { s.Tolerations = tolerateAll }))
	}
	pods := make([]kube.Pod, 100000)
	for i := range pods {
		pods[i] = kube.Pod{Namespace: "ns", Name: fmt.Sprintf("pod-%06d", i), NodeName: nodes[i%len(nodes)].Name, Phase: kube.PhaseRunning,
			OwnerKind: "DaemonSet", OwnerName: fmt.Sprintf("ds-%03d", i%300), Detail: &kube.PodDetail{Labels: map[string]string{"burst": "eci"},
				Waiting: []kube.ContainerWaiting{{Container: "app", Image: "harbor.corp.local:8443/app:1", Reason: "ErrImagePull", Message: x509Msg}}}}
		if i%2 == 0 {
			pods[i].NodeName, pods[i].Phase = "", kube.PhasePending
			pods[i].Detail.Scheduling = &kube.PodScheduling{NodeSelector: map[string]string{"type": "virtual-kubelet"}}
		}
	}
	evals := map[string]func(context.Context) []*pb.Result{
		"daemonset-affinity": func(ctx context.Context) []*pb.Result { return evaluateDaemonSets(ctx, nodes, dss, pods, nil) },
		"registry-tls":       func(ctx context.Context) []*pb.Result { return evaluateRegistryTLS(ctx, nodes, pods, nil, nil, nil) },
		"present":            func(ctx context.Context) []*pb.Result { return evaluatePresent(ctx, nodes) },
		"pod-placement": func(ctx context.Context) []*pb.Result {
			return evaluatePodPlacement(ctx, placementInput{nodes: nodes, pods: pods, profile: scaleProfile})
		},
		"eci-profile": func(ctx context.Context) []*pb.Result {
			return evaluateECIProfile(ctx, scaleProfile, nodes, pods, nil, nil)
		},
		"nas-fsgroup": func(ctx context.Context) []*pb.Result { return evaluateNASFSGroup(ctx, nodes, pods, nil, nil, nil) },
	}
	for name, eval := range evals {
		t.Run(name, func(t *testing.T) {
			free := &diagtest.PollCtx{Context: context.Background(), K: 1 << 30}
			if r := eval(free); r[0].Status == pb.Status_ERROR {
				t.Fatalf("uncanceled run: %q", r[0].Summary)
			}
			for _, k := range []int{0, free.Asks / 2, free.Asks - 1} {
				c := &diagtest.PollCtx{Context: context.Background(), K: k}
				rs := eval(c)
				if len(rs) != 1 || rs[0].Status != pb.Status_ERROR || !strings.HasPrefix(rs[0].Summary, "stopped: canceled") {
					t.Fatalf("ended at look %d: %d results, first %s %q", k, len(rs), rs[0].Status, rs[0].Summary)
				}
				if c.Asks > k+2 { // the look that saw the end, and Stopped's
					t.Errorf("ended at look %d, looked %d times: it ran on past the end", k, c.Asks)
				}
			}
			t.Logf("%d looks in a full evaluation", free.Asks)
		})
	}
	free := &diagtest.PollCtx{Context: context.Background(), K: 1 << 30}
	evaluateDaemonSets(free, nodes, dss, pods, nil)
	if want := len(pods) / diag.PollEvery; free.Asks < want {
		t.Errorf("daemonset-affinity looked %d times over %d pods, want at least %d", free.Asks, len(pods), want)
	}
}

// TestDetailPodsSuffice: the checks that are handed only the pods with a
// Detail (kube.Snapshot.PodsWithDetail) judge them as they judge every
// pod: on the scale cluster, whose pods are of every shape, each gives the
// same results from both.
func TestDetailPodsSuffice(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 150,000-pod cluster")
	}
	nodes, _, pods, events := scaleCluster()
	detail := (&kube.Snapshot{Pods: pods}).PodsWithDetail()
	if len(detail) == 0 || len(detail) == len(pods) {
		t.Fatalf("%d of %d pods with a Detail: the cluster does not tell the two apart", len(detail), len(pods))
	}
	ctx := context.Background()
	for name, f := range map[string]func([]kube.Pod) []*pb.Result{
		"registry-tls": func(ps []kube.Pod) []*pb.Result { return evaluateRegistryTLS(ctx, nodes, ps, events, nil, nil) },
		"pod-placement": func(ps []kube.Pod) []*pb.Result {
			return evaluatePodPlacement(ctx, placementInput{nodes: nodes, pods: ps, events: events, profile: scaleProfile})
		},
		"eci-profile": func(ps []kube.Pod) []*pb.Result { return evaluateECIProfile(ctx, scaleProfile, nodes, ps, nil, nil) },
		"nas-fsgroup": func(ps []kube.Pod) []*pb.Result { return evaluateNASFSGroup(ctx, nodes, ps, nil, nil, nil) },
	} {
		if all, some := diagtest.Dump(f(pods)), diagtest.Dump(f(detail)); all != some {
			t.Errorf("%s: every pod gives\n%s\nthe pods with a Detail give\n%s", name, all, some)
		}
	}
}
