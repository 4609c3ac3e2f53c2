package vnode

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// annotationInsecureRegistry makes ECI skip certificate verification for
// the listed registries (comma-separated, host[:port], "*" wildcards). ECI
// reads it when it creates the instance, from the pod's own metadata.
const annotationInsecureRegistry = "k8s.aliyun.com/insecure-registry"

// pullReasons are the waiting reasons of a container whose image pull fails.
var pullReasons = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true}

// certMarkers are the Go crypto/tls and x509 error texts a pull through a
// registry with a self-signed or private-CA certificate ends in.
var certMarkers = []string{
	"x509:",
	"unknown authority",
	"tls: failed to verify certificate",
	"certificate is not valid",
	"certificate has expired",
	"certificate is valid for",
}

func certError(msg string) bool {
	m := strings.ToLower(msg)
	for _, k := range certMarkers {
		if strings.Contains(m, k) {
			return true
		}
	}
	return false
}

var quotedImageRe = regexp.MustCompile(`image "([^"]+)"`)

// imageInMessage is the image a kubelet or ECI pull message names.
func imageInMessage(msg string) string {
	if m := quotedImageRe.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

// coveredBy reports whether the annotation value lists host.
func coveredBy(value, host string) bool {
	for _, pat := range strings.Split(value, ",") {
		pat = strings.TrimSpace(pat)
		if pat == "" {
			continue
		}
		if pat == host {
			return true
		}
		if ok, err := path.Match(pat, host); err == nil && ok {
			return true
		}
	}
	return false
}

func runRegistryTLS(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	if r := canceled(ctx); r != nil {
		return r
	}
	out := evaluateRegistryTLS(ctx, s.Nodes, s.PodsWithDetail(), s.PodEvents, listedDeployments(s), s.NodeFacts())
	return noteUnread(out, s, kube.PartEvents, "certificate errors reported only in events are not seen")
}

// pullFailure is one VNode pod whose image pull fails on a certificate error.
type pullFailure struct {
	pod    *kube.Pod
	hosts  []string
	images []string
	ev     []*pb.Evidence
}

// evaluateRegistryTLS finds pods on VNodes that cannot pull an image because
// the registry's certificate does not verify, and gives the annotation that
// makes ECI skip the verification for that registry.
func evaluateRegistryTLS(ctx context.Context, nodes []*corev1.Node, pods []kube.Pod, events []kube.Event, deps []*appsv1.Deployment, facts *kube.NodeFacts) []*pb.Result {
	vns := vnodesOf(nodes, facts)
	if len(vns) == 0 {
		return []*pb.Result{noVNode(len(nodes))}
	}
	isVN := nameSet(vns)
	poll := diag.NewPoll(ctx)
	// Only certificate-error events are kept, so the index stays small.
	certEvents := map[string][]kube.Event{}
	for _, e := range events {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		if certError(e.Message) {
			certEvents[e.Namespace+"/"+e.Pod] = append(certEvents[e.Namespace+"/"+e.Pod], e)
		}
	}
	depByName := deploymentNames(deps)

	var fails []pullFailure
	otherPullFailures := 0
	for i := range pods {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		p := &pods[i]
		if len(p.Waiting()) == 0 || !isVN[p.NodeName] {
			continue // a pod with no waiting container fails no pull
		}
		f, pulling := podPullFailure(p, certEvents[p.Namespace+"/"+p.Name])
		switch {
		case f != nil:
			fails = append(fails, *f)
		case pulling:
			otherPullFailures++
		}
	}
	if len(fails) == 0 {
		res := diag.Pass("no pod on the %d VNode(s) fails an image pull on a certificate error", len(vns))
		res.Evidence = []*pb.Evidence{diag.Ev("VNode pods failing image pulls for other reasons", "", fmt.Sprint(otherPullFailures))}
		return []*pb.Result{res}
	}
	var out []*pb.Result
	for _, f := range fails {
		out = append(out, registryResult(f, depByName))
	}
	return sortResults(out)
}

// podPullFailure reports p when a container fails to pull on a certificate
// error, seen in its waiting message or in a Warning event about it.
// pulling is true when a pull fails for another reason.
func podPullFailure(p *kube.Pod, evs []kube.Event) (f *pullFailure, pulling bool) {
	var failing []kube.ContainerWaiting
	for _, w := range p.Waiting() {
		if pullReasons[w.Reason] {
			failing = append(failing, w)
		}
	}
	if len(failing) == 0 {
		return nil, false
	}
	f = &pullFailure{pod: p}
	cert := false
	imgs := map[string]bool{}
	for _, w := range failing {
		obs := w.Reason
		if w.Message != "" {
			obs += ": " + w.Message
		}
		f.ev = append(f.ev, diag.Ev("container "+w.Container, "image pulled", obs))
		if !certError(w.Message) {
			continue
		}
		cert = true
		img := imageInMessage(w.Message)
		if img == "" {
			img = w.Image
		}
		if img != "" {
			imgs[img] = true
		}
	}
	for _, e := range evs {
		cert = true
		f.ev = append(f.ev, diag.Ev(fmt.Sprintf("event %s (count %d)", e.Reason, e.Count), "no certificate error", e.Message))
		if img := imageInMessage(e.Message); img != "" {
			imgs[img] = true
		}
	}
	if !cert {
		return nil, true
	}
	if len(imgs) == 0 {
		// No message names the image: the failing containers' images, or
		// the pod's only image.
		for _, w := range failing {
			if w.Image != "" {
				imgs[w.Image] = true
			}
		}
		if len(imgs) == 0 && len(p.Images()) == 1 {
			imgs[p.Images()[0]] = true
		}
	}
	hosts := map[string]bool{}
	for img := range imgs {
		f.images = append(f.images, img)
		if r, err := parseImageRef(img); err == nil {
			hosts[r.Host] = true
		}
	}
	sort.Strings(f.images)
	for h := range hosts {
		f.hosts = append(f.hosts, h)
	}
	sort.Strings(f.hosts)
	return f, true
}

func registryResult(f pullFailure, depByName deploymentSet) *pb.Result {
	p := f.pod
	key := p.Namespace + "/" + p.Name
	current, has := p.Annotations()[annotationInsecureRegistry]
	var missing []string
	for _, h := range f.hosts {
		if !has || !coveredBy(current, h) {
			missing = append(missing, h)
		}
	}
	ev := append([]*pb.Evidence{}, f.ev...)
	ev = append(ev, diag.Ev("image", "", strings.Join(f.images, ", ")))
	ev = append(ev, diag.Ev("registry host", "", strings.Join(f.hosts, ", ")))
	annObs := "absent"
	if has {
		annObs = fmt.Sprintf("%q", current)
	}
	ev = append(ev, diag.Ev("annotation "+annotationInsecureRegistry, "lists "+strings.Join(f.hosts, ", "), annObs))

	res := &pb.Result{Status: pb.Status_WARN}
	res.Objects = []*pb.Object{diag.Obj("Pod", p.Namespace, p.Name)}
	res.Evidence = ev
	switch {
	case len(f.hosts) == 0:
		res.Summary = fmt.Sprintf("pod %s on VNode %s fails to pull an image on a certificate error; the image could not be told from its status", key, p.NodeName)
		res.Remediation = fmt.Sprintf("Find the image's registry host in `kubectl -n %s describe pod %s` and add to the pod template's metadata.annotations: %s: \"<host[:port]>\".",
			p.Namespace, p.Name, annotationInsecureRegistry)
	case len(missing) == 0:
		res.Summary = fmt.Sprintf("pod %s on VNode %s fails to pull from %s on a certificate error although it already carries %s: %q",
			key, p.NodeName, strings.Join(f.hosts, ", "), annotationInsecureRegistry, current)
		res.Remediation = fmt.Sprintf("ECI reads %s only when it creates the instance: recreate the pod (`kubectl -n %s delete pod %s`; its controller makes a new one). "+
			"If the new pod fails the same way, the certificate is not the only problem: check that %s serves HTTPS on that port "+
			"(for plain HTTP use k8s.aliyun.com/plain-http-registry instead).", annotationInsecureRegistry, p.Namespace, p.Name, strings.Join(f.hosts, ", "))
	default:
		value := strings.Join(missing, ",")
		if has && strings.TrimSpace(current) != "" {
			value = current + "," + value
		}
		res.Summary = fmt.Sprintf("pod %s on VNode %s fails to pull from %s on a certificate error: add annotation %s: %q",
			key, p.NodeName, strings.Join(f.hosts, ", "), annotationInsecureRegistry, value)
		if has {
			res.Summary += fmt.Sprintf(" (it carries %q, which does not list %s)", current, strings.Join(missing, ", "))
		}
		res.Remediation = annotationFix(p, value, depByName)
	}
	return res
}

// annotationFix says where the annotation goes: the pod template of the
// workload that creates the pod, since ECI reads it at instance creation.
func annotationFix(p *kube.Pod, value string, depByName deploymentSet) string {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{annotationInsecureRegistry: value}}}}})
	why := fmt.Sprintf("ECI then skips certificate verification for these registries; it reads the annotation when it creates the instance, "+
		"so the pods are recreated by the rollout. Trusting the registry's CA is the safer fix where you control the registry. The value is: %s: %q.",
		annotationInsecureRegistry, value)
	kind, name := workloadOf(p, depByName)
	switch kind {
	case "Deployment", "StatefulSet", "ReplicaSet", "DaemonSet":
		return fmt.Sprintf("kubectl -n %s patch %s %s --type=merge -p '%s'\n%s", p.Namespace, strings.ToLower(kind), name, patch, why)
	case "":
		return fmt.Sprintf("Recreate pod %s/%s with metadata.annotations %s: %q. %s", p.Namespace, p.Name, annotationInsecureRegistry, value, why)
	}
	return fmt.Sprintf("Add %s: %q to spec.template.metadata.annotations of %s %s/%s (recreate it if its template is immutable). %s",
		annotationInsecureRegistry, value, kind, p.Namespace, name, why)
}
