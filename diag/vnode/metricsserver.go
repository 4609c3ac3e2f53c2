package vnode

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/spf13/pflag"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const metricsAPIService = "v1beta1.metrics.k8s.io"

// The metrics-server releases that matter for VNodes: v0.6.0 moved the
// scrape from /stats/summary to /metrics/resource, which VNodes do not
// serve; v0.5.2 is the last release before it.
var (
	msResourceEndpoint = version.MustParseGeneric("0.6.0")
	msTestedSeries     = version.MustParseGeneric("0.5.0")
	msRecommended      = "v0.5.2"
)

// msFlags are the flags the vendor's FAQ gives metrics-server for VNodes.
var msFlags = []struct{ name, value string }{
	{"--kubelet-use-node-status-port", ""},
	{"--kubelet-insecure-tls", ""},
	{"--kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname"},
}

// Labels the common manifests and charts put on metrics-server.
var msLabels = [][2]string{
	{"k8s-app", "metrics-server"},
	{"app.kubernetes.io/name", "metrics-server"},
	{"app", "metrics-server"},
}

// metricsServerContainer returns the index of d's metrics-server container,
// or -1 when d is not metrics-server.
func metricsServerContainer(d *appsv1.Deployment) int {
	ctrs := d.Spec.Template.Spec.Containers
	for i, c := range ctrs {
		// Parsing every image of every Deployment is most of this check's
		// time in a large cluster; an image named metrics-server contains
		// the name.
		if !strings.Contains(c.Image, "metrics-server") {
			continue
		}
		if r, err := parseImageRef(c.Image); err == nil && r.Name() == "metrics-server" {
			return i
		}
	}
	for i, c := range ctrs {
		if c.Name == "metrics-server" {
			return i
		}
	}
	named := d.Name == "metrics-server" || strings.HasSuffix(d.Name, "-metrics-server")
	for _, l := range msLabels {
		if d.Labels[l[0]] == l[1] || d.Spec.Template.Labels[l[0]] == l[1] {
			named = true
		}
	}
	if named && len(ctrs) > 0 {
		return 0
	}
	return -1
}

// msCommandLine reads the VNode flags of a metrics-server command line as
// metrics-server itself does (pflag): the last occurrence wins, booleans
// take strconv.ParseBool's values, flags it does not know are skipped.
func msCommandLine(args []string) (*pflag.FlagSet, error) {
	fs := pflag.NewFlagSet("metrics-server", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	for _, f := range msFlags {
		if f.value == "" {
			fs.Bool(strings.TrimPrefix(f.name, "--"), false, "")
		} else {
			fs.String(strings.TrimPrefix(f.name, "--"), "", "")
		}
	}
	return fs, fs.Parse(args)
}

// flagProblems lists what the container's command line lacks of msFlags.
// The address types are accepted when InternalIP comes first: a VNode's
// kubelet endpoint is its InternalIP.
func flagProblems(args []string) (problems []string, ev []*pb.Evidence) {
	fs, err := msCommandLine(args)
	if err != nil {
		ev = append(ev, diag.Ev("command line", "flags metrics-server accepts", err.Error()))
		return append(problems, "the command line does not parse: "+err.Error()), ev
	}
	for _, f := range msFlags {
		name := strings.TrimPrefix(f.name, "--")
		if f.value == "" {
			on, _ := fs.GetBool(name)
			seen := "absent"
			switch {
			case fs.Changed(name) && on:
				seen = f.name
			case fs.Changed(name):
				seen = f.name + "=" + fs.Lookup(name).Value.String()
			}
			ev = append(ev, diag.Ev("flag "+f.name, f.name, seen))
			if !on {
				problems = append(problems, f.name+" is not set")
			}
			continue
		}
		v, _ := fs.GetString(name)
		want := f.name + "=" + f.value
		if !fs.Changed(name) {
			ev = append(ev, diag.Ev("flag "+f.name, want, "absent"))
			problems = append(problems, f.name+" is not set")
			continue
		}
		ev = append(ev, diag.Ev("flag "+f.name, want, f.name+"="+v))
		if first, _, _ := strings.Cut(v, ","); strings.TrimSpace(first) != "InternalIP" {
			problems = append(problems, f.name+"="+v+" does not try InternalIP first")
		}
	}
	return problems, ev
}

// fixedArgs is args with every msFlags flag replaced by the FAQ's setting.
func fixedArgs(args []string) []string {
	var out []string
	skipNext := false
	for _, a := range args {
		if skipNext {
			skipNext = false
			continue
		}
		drop := false
		for _, f := range msFlags {
			if a == f.name || strings.HasPrefix(a, f.name+"=") {
				drop = true
				skipNext = a == f.name && f.value != ""
			}
		}
		if !drop {
			out = append(out, a)
		}
	}
	for _, f := range msFlags {
		if f.value == "" {
			out = append(out, f.name)
		} else {
			out = append(out, f.name+"="+f.value)
		}
	}
	return out
}

// msVersion reads the version from the image tag, falling back to the
// app.kubernetes.io/version label charts set; from says which.
func msVersion(d *appsv1.Deployment, image string) (v *version.Version, from string, ok bool) {
	if r, err := parseImageRef(image); err == nil && r.Tag != "" {
		if v, ok := parseVersion(r.Tag); ok {
			return v, "image tag " + r.Tag, true
		}
	}
	for _, l := range []map[string]string{d.Spec.Template.Labels, d.Labels} {
		if s := l["app.kubernetes.io/version"]; s != "" {
			if v, ok := parseVersion(s); ok {
				return v, "label app.kubernetes.io/version=" + s, true
			}
		}
	}
	return nil, "", false
}

func runMetricsServer(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	if r := s.Unread(kube.PartDeployments); r != nil {
		return []*pb.Result{r}
	}
	if r := canceled(ctx); r != nil {
		return r
	}
	return evaluateMetricsServer(len(vnodes(s.Nodes)), s.Deployments, s.MetricsAPIService, s.PartErrors[kube.PartMetricsAPIService])
}

// evaluateMetricsServer judges each metrics-server Deployment against
// VNodes: its version, its flags and the metrics APIService.
func evaluateMetricsServer(vnodeCount int, deps []*appsv1.Deployment, api *kube.APIService, apiErr error) []*pb.Result {
	type found struct {
		d  *appsv1.Deployment
		ci int
	}
	var ms []found
	for _, d := range deps {
		if ci := metricsServerContainer(d); ci >= 0 {
			ms = append(ms, found{d, ci})
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].d.Namespace != ms[j].d.Namespace {
			return ms[i].d.Namespace < ms[j].d.Namespace
		}
		return ms[i].d.Name < ms[j].d.Name
	})
	if len(ms) == 0 {
		res := diag.Skip("no metrics-server Deployment found: looked in every namespace for one named metrics-server, " +
			"labelled k8s-app, app.kubernetes.io/name or app =metrics-server, or running a metrics-server image")
		res.Evidence = []*pb.Evidence{apiServiceEvidence(api, apiErr)}
		return []*pb.Result{res}
	}
	if vnodeCount == 0 {
		res := noVNode(0)
		res.Summary = "no VNode in the cluster, so metrics-server compatibility with VNodes does not apply: " + noVNodeReason
		res.Evidence = nil
		for _, m := range ms {
			res.Objects = append(res.Objects, diag.Obj("Deployment", m.d.Namespace, m.d.Name))
			res.Evidence = append(res.Evidence, diag.Ev("image of "+m.d.Namespace+"/"+m.d.Name, "", m.d.Spec.Template.Spec.Containers[m.ci].Image))
		}
		return []*pb.Result{res}
	}
	var out []*pb.Result
	for _, m := range ms {
		out = append(out, evaluateOneMetricsServer(m.d, m.ci, api, apiErr))
	}
	if apiErr != nil {
		out = append(out, kube.UnreadPart(kube.PartMetricsAPIService, apiErr))
	}
	return out
}

func apiServiceEvidence(api *kube.APIService, apiErr error) *pb.Evidence {
	const label = "APIService " + metricsAPIService
	switch {
	case apiErr != nil:
		return diag.Ev(label, "Available=True", "could not be read: "+apiErr.Error())
	case api == nil:
		return diag.Ev(label, "Available=True", "not registered")
	}
	obs := "Available=" + api.Available
	if api.Reason != "" {
		obs += " (" + api.Reason
		if api.Message != "" {
			obs += ": " + api.Message
		}
		obs += ")"
	}
	if api.Service != "" {
		obs += ", service " + api.Service
	} else {
		obs += ", served locally"
	}
	return diag.Ev(label, "Available=True", obs)
}

func evaluateOneMetricsServer(d *appsv1.Deployment, ci int, api *kube.APIService, apiErr error) *pb.Result {
	ctr := d.Spec.Template.Spec.Containers[ci]
	key := d.Namespace + "/" + d.Name
	args := append(append([]string{}, ctr.Command...), ctr.Args...)
	problems, flagEv := flagProblems(args)
	v, from, known := msVersion(d, ctr.Image)

	ev := []*pb.Evidence{diag.Ev("image", "metrics-server "+msRecommended+" (a v0.5.x release)", ctr.Image)}
	if known {
		ev = append(ev, diag.Ev("version", "v0.5.x (v0.6.0 and later scrape /metrics/resource, which VNodes do not serve)", release(v)+" from "+from))
	} else {
		ev = append(ev, diag.Ev("version", "v0.5.x", "unknown: the image tag names no release"))
	}
	ev = append(ev, flagEv...)
	ev = append(ev, apiServiceEvidence(api, apiErr))

	var status pb.Status
	var summary string
	needImage := false
	switch {
	case !known:
		status = pb.Status_WARN
		summary = fmt.Sprintf("could not tell the version of metrics-server %s from image %q: v0.6.0 and later do not work with VNodes", key, ctr.Image)
	case v.AtLeast(msResourceEndpoint):
		status, needImage = pb.Status_FAIL, true
		summary = fmt.Sprintf("metrics-server %s is %s: it scrapes /metrics/resource, which VNodes do not serve (404), so kubectl top and HPA miss VNode pods", key, release(v))
	case v.LessThan(msTestedSeries):
		status, needImage = pb.Status_WARN, true
		summary = fmt.Sprintf("metrics-server %s is %s, older than the v0.5.x series documented to work with VNodes", key, release(v))
	case len(problems) > 0:
		status = pb.Status_WARN
		summary = fmt.Sprintf("metrics-server %s is %s but lacks the VNode flags: %s", key, release(v), strings.Join(problems, "; "))
	default:
		status = pb.Status_PASS
		summary = fmt.Sprintf("metrics-server %s is %s with the VNode flags", key, release(v))
	}

	var fix []string
	if status != pb.Status_PASS {
		fix = append(fix, msPatch(d, ci, ctr, needImage || !known, len(problems) > 0 || needImage))
	}
	switch {
	case apiErr != nil:
	case api == nil:
		status = worst(status, pb.Status_WARN)
		summary += "; APIService " + metricsAPIService + " is not registered"
		fix = append(fix, fmt.Sprintf("Register the metrics API: apply the APIService %s (group metrics.k8s.io, version v1beta1) "+
			"from the metrics-server release manifest, with spec.service pointing at the Service in front of %s.", metricsAPIService, key))
	case api.Available == "True":
	case api.Available == "False":
		status = worst(status, pb.Status_FAIL)
		summary += fmt.Sprintf("; APIService %s is not Available (%s)", metricsAPIService, api.Reason)
		fix = append(fix, fmt.Sprintf("The aggregator cannot reach metrics-server behind APIService %s (%s: %s). "+
			"Check that Service %s has ready endpoints (`kubectl -n %s get endpointslices -l kubernetes.io/service-name=%s`) and read "+
			"`kubectl -n %s logs deploy/%s`.", metricsAPIService, api.Reason, api.Message, api.Service, serviceNS(api, d), serviceName(api, d), d.Namespace, d.Name))
	default:
		status = worst(status, pb.Status_WARN)
		summary += fmt.Sprintf("; APIService %s is Available=%s", metricsAPIService, api.Available)
		fix = append(fix, fmt.Sprintf("Re-check in a minute; if APIService %s stays Available=%s, read `kubectl describe apiservice %s`.",
			metricsAPIService, api.Available, metricsAPIService))
	}
	res := diag.Res(status, "%s", summary)
	res.Objects = []*pb.Object{diag.Obj("Deployment", d.Namespace, d.Name)}
	if api != nil {
		res.Objects = append(res.Objects, diag.Obj("APIService", "", metricsAPIService))
	}
	res.Evidence = ev
	res.Remediation = strings.Join(fix, "\n")
	return res
}

func serviceNS(api *kube.APIService, d *appsv1.Deployment) string {
	if ns, _, ok := strings.Cut(api.Service, "/"); ok {
		return ns
	}
	return d.Namespace
}

func serviceName(api *kube.APIService, d *appsv1.Deployment) string {
	if _, n, ok := strings.Cut(api.Service, "/"); ok {
		return n
	}
	return d.Name
}

// msPatch is the exact change: the v0.5.2 image from the same repository
// (mirrors keep working) and the FAQ's flags merged into the existing args.
func msPatch(d *appsv1.Deployment, ci int, ctr corev1.Container, image, flags bool) string {
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	var ops []op
	base := fmt.Sprintf("/spec/template/spec/containers/%d", ci)
	repo := "registry.k8s.io/metrics-server/metrics-server"
	if r, err := parseImageRef(ctr.Image); err == nil {
		repo = r.Repository()
	}
	if image {
		ops = append(ops, op{"replace", base + "/image", repo + ":" + msRecommended})
	}
	if flags {
		// "add" replaces args when they exist and creates them otherwise.
		ops = append(ops, op{"add", base + "/args", fixedArgs(ctr.Args)})
	}
	p, _ := json.Marshal(ops)
	var b strings.Builder
	if image {
		fmt.Fprintf(&b, "Run metrics-server %s (the last release that scrapes /stats/summary, which VNodes serve) with the VNode flags %s:\n",
			msRecommended, flagList())
	} else {
		fmt.Fprintf(&b, "Set the VNode flags %s on metrics-server (v0.6.0 and later do not work with VNodes: keep a v0.5.x release):\n", flagList())
	}
	fmt.Fprintf(&b, "kubectl -n %s patch deployment %s --type=json -p '%s'", d.Namespace, d.Name, p)
	if image {
		b.WriteString("\nIf your registry mirrors metrics-server, push " + msRecommended + " to " + repo + " first. " +
			"v0.5.x reads nodes/stats: the ClusterRole bound to metrics-server's ServiceAccount (system:metrics-server in the upstream manifest) " +
			"must allow it: kubectl patch clusterrole system:metrics-server --type=json " +
			`-p '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["nodes/stats"],"verbs":["get"]}}]'`)
	}
	return b.String()
}

func flagList() string {
	s := make([]string, len(msFlags))
	for i, f := range msFlags {
		s[i] = f.name
		if f.value != "" {
			s[i] += "=" + f.value
		}
	}
	return strings.Join(s, " ")
}
