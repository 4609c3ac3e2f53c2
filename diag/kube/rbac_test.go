package kube_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// rbacFile is the chart's RBAC (deploy/helm/vnodediag/templates/rbac.yaml)
// as rendered with the kustomize base's values by `make manifests`; the
// chart test (test/chart) fails when this render is stale, so these tests
// prove the roles the chart installs.
const rbacFile = "../../deploy/kubernetes/rbac.yaml"

// readRoles returns the ClusterRole and the Roles of the shipped RBAC.
func readRoles(t *testing.T) (*rbacv1.ClusterRole, []*rbacv1.Role) {
	t.Helper()
	objs, err := kubelab.ReadManifests(rbacFile)
	if err != nil {
		t.Fatal(err)
	}
	crs := kubelab.ObjectsOf[*rbacv1.ClusterRole](objs)
	if len(crs) != 1 {
		t.Fatalf("%s has %d ClusterRoles, want 1", rbacFile, len(crs))
	}
	return crs[0], kubelab.ObjectsOf[*rbacv1.Role](objs)
}

// TestShippedRBACIsReadOnly: the shipped roles grant get/list/watch only.
func TestShippedRBACIsReadOnly(t *testing.T) {
	cr, roles := readRoles(t)
	rules := cr.Rules
	for _, r := range roles {
		rules = append(rules, r.Rules...)
	}
	for _, r := range rules {
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("rule %v grants verb %q; vnodediag must only read", r.Resources, v)
			}
		}
	}
}

// access is one thing a request does or a role allows: a verb on a
// resource, by name or ("") on any, in a namespace or ("") in any.
type access struct {
	group, resource, verb, name, namespace string
}

func (a access) String() string {
	g := a.group
	if g == "" {
		g = "core"
	}
	s := fmt.Sprintf("%s %s/%s", a.verb, g, a.resource)
	if a.name != "" {
		s += " " + a.name
	}
	if a.namespace != "" {
		s += " in " + a.namespace
	}
	return s
}

// grants expands the rules of a role into what they allow, in namespace
// ("" for a ClusterRole: any).
func grants(rules []rbacv1.PolicyRule, namespace string) []access {
	var out []access
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					for _, n := range names {
						out = append(out, access{g, res, v, n, namespace})
					}
				}
			}
		}
	}
	return out
}

func (a access) allows(req access) bool {
	return a.group == req.group && a.resource == req.resource && a.verb == req.verb &&
		(a.name == "" || a.name == req.name) && (a.namespace == "" || a.namespace == req.namespace)
}

// generatedNames are resources whose names vnodediag cannot know in
// advance: the agent pods are named by their Deployment's ReplicaSet. Their
// grant is bounded by its Role's namespace instead of resourceNames.
var generatedNames = map[string]bool{"pods/log": true}

// auditEvent is the part of an audit.k8s.io/v1 Event the test reads.
type auditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Name        string `json:"name"`
		Namespace   string `json:"namespace"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	Annotations map[string]string `json:"annotations"`
}

// requests reads what user asked the API server for, from its audit log,
// once the request marked by sentinel (made after the user's) is in it.
func requests(t *testing.T, lab *kubelab.Lab, user, sentinel string) (res []access, nonResource []auditEvent) {
	t.Helper()
	for try := 0; ; try++ {
		res, nonResource = nil, nil
		f, err := os.Open(lab.AuditLog)
		if err != nil {
			t.Fatal(err)
		}
		seen := false
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e auditEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("audit log: %v", err)
			}
			if strings.Contains(e.RequestURI, sentinel) {
				seen = true
			}
			if e.User.Username != user {
				continue
			}
			if d := e.Annotations["authorization.k8s.io/decision"]; d != "allow" {
				t.Errorf("request %s %s was not allowed (%s): %s", e.Verb, e.RequestURI, d, e.Annotations["authorization.k8s.io/reason"])
			}
			if e.ObjectRef == nil {
				nonResource = append(nonResource, e)
				continue
			}
			r := e.ObjectRef.Resource
			if e.ObjectRef.Subresource != "" {
				r += "/" + e.ObjectRef.Subresource
			}
			res = append(res, access{e.ObjectRef.APIGroup, r, e.Verb, e.ObjectRef.Name, e.ObjectRef.Namespace})
		}
		_ = f.Close()
		if seen {
			return res, nonResource
		}
		if try == 100 {
			t.Fatal("the audit log never got the sentinel request")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentObjects are a VNode and an agent pod on it for the agent source to
// find and read. The VNode's only address is loopback, with a kubelet port
// where nothing listens: the API server's pods/log request is authorized
// and audited, then refused on loopback, and no traffic leaves the machine.
func agentObjects(t *testing.T) []any {
	_, portText, _ := net.SplitHostPort(diagtest.ClosedPort(t))
	port, _ := strconv.Atoi(portText)
	vn := kubelab.VNode("vnode-rbac", "type")
	vn.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	vn.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	pod := kubelab.Pod(agent.DefaultNamespace, "vnodediag-agent-5d9c7b6f4-rbac1", vn.Name, "127.0.0.2")
	pod.Labels = map[string]string{"app.kubernetes.io/name": "vnodediag-agent"}
	pod.Spec.Containers[0].Name = agent.DefaultContainer
	return []any{vn, pod}
}

// TestShippedRBACIsExactlyWhatTheSourceReads runs a one-shot run of the
// Kubernetes and agent sources as a user bound to nothing but the shipped
// roles, against a real API server that audits every request, and compares
// in both directions: every request of the gather is granted by the roles
// (and was allowed), and every grant was used by the gather, so an unused
// or too broad grant fails here. The user cannot write, and the run leaves
// no goroutine behind.
func TestShippedRBACIsExactlyWhatTheSourceReads(t *testing.T) {
	lab := kubelab.StartAuditedT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, append(append(kubelab.HybridCluster(), agentObjects(t)...), kubelab.ECIProfileFor("sg-rbactest0000001", "vsw-rbactest000001"))...); err != nil {
		t.Fatal(err)
	}
	const user = "vnodediag-ro"
	cr, roles := readRoles(t)
	if _, err := lab.Client.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vnodediag-read-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: user}},
	}
	if _, err := lab.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := grants(cr.Rules, "")
	for _, r := range roles {
		if _, err := lab.Client.RbacV1().Roles(r.Namespace).Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: r.Name + "-test", Namespace: r.Namespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: r.Name},
			Subjects:   []rbacv1.Subject{{Kind: "User", Name: user}},
		}
		if _, err := lab.Client.RbacV1().RoleBindings(r.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		role = append(role, grants(r.Rules, r.Namespace)...)
	}
	rc, err := lab.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}

	leaks := goleak.IgnoreCurrent()
	p, err := kube.ForRESTConfig(&kube.Config{PageSize: 4}, rc, "")
	if err != nil {
		t.Fatal(err)
	}
	// The agents as the default section finds them; the direct path is
	// no request to the API server.
	ap, err := agent.NewProvider(&agent.Config{Direct: new(bool)}, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var s *kube.Snapshot
	var agents *agent.Snapshot
	look := diag.Check{ID: "test.snapshot", Needs: diag.Needs(kube.Source, agent.Source), Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
		s, agents = kube.Source.Get(in), agent.Source.Get(in)
		return []*pb.Result{diag.Pass("read")}
	}}
	r := &diag.Runner{Providers: []diag.Provider{p, ap}}
	rep := r.Run(ctx, []diag.Check{look})
	r.Close()
	goleak.VerifyNone(t, leaks)
	for _, st := range rep.Sources {
		if st.State != pb.SourceStatus_OK {
			t.Fatalf("gather as read-only user: %v", st)
		}
	}
	for part, err := range s.PartErrors {
		t.Errorf("part %s failed under the shipped role: %v", part, err)
	}
	if s.ECIProfile == nil || s.ECIProfile.SecurityGroupID != "sg-rbactest0000001" {
		t.Errorf("eci-profile not read: %v", s.ECIProfile)
	}
	if len(s.Nodes) != 10 || len(s.Pods) != 15 || s.ClusterUID == "" || len(s.ServiceCIDRs) == 0 {
		t.Errorf("snapshot: %d nodes, %d pods, uid %q, service CIDRs %v", len(s.Nodes), len(s.Pods), s.ClusterUID, s.ServiceCIDRs)
	}
	// The log was asked for and allowed; only the kubelet, which this lab
	// does not run, refused it.
	if len(agents.Agents) != 1 || !agents.Agents[0].Log.Read || strings.Contains(agents.Agents[0].Log.Err, "forbidden") {
		t.Errorf("agents under the shipped roles: %+v", agents.Agents)
	}

	// The daemon's watch cache, as the same user: it lists and watches.
	leaks = goleak.IgnoreCurrent()
	cp, err := kube.CachedForRESTConfig(&kube.Config{}, rc, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := cp.Gather(ctx)
	if err != nil {
		t.Fatalf("cached gather as read-only user: %v", err)
	}
	csnap := v.(*kube.Snapshot)
	for part, err := range csnap.PartErrors {
		t.Errorf("part %s failed in the watch cache under the shipped role: %v", part, err)
	}
	if csnap.ECIProfile == nil || len(csnap.Nodes) != 10 || len(csnap.Pods) != 15 || csnap.ClusterUID == "" {
		t.Errorf("cached snapshot: %d nodes, %d pods, uid %q, eci-profile %v", len(csnap.Nodes), len(csnap.Pods), csnap.ClusterUID, csnap.ECIProfile)
	}
	cp.Close()
	goleak.VerifyNone(t, leaks)

	const sentinel = "vnodediag-audit-sentinel"
	if _, err := lab.Client.CoreV1().Namespaces().Get(ctx, sentinel, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("sentinel request: %v", err)
	}
	made, nonResource := requests(t, lab, user, sentinel)
	if len(made) == 0 {
		t.Fatal("the audit log has no request of the gather")
	}
	for _, q := range made {
		if !slices.ContainsFunc(role, func(g access) bool { return g.allows(q) }) {
			t.Errorf("the gather made %s, which the shipped roles do not grant", q)
		}
	}
	for _, g := range role {
		var used []access
		for _, q := range made {
			if g.allows(q) {
				used = append(used, q)
			}
		}
		switch {
		case len(used) == 0:
			t.Errorf("the shipped role grants %s, which the gather never does: remove it", g)
		case g.name == "" && !generatedNames[g.resource] && !slices.ContainsFunc(used, func(q access) bool { return q.name == "" }):
			t.Errorf("the shipped role grants %s on any name, but the gather only reads %v: name them in resourceNames", g, used)
		}
	}
	for _, e := range nonResource {
		if e.RequestURI != "/version" && !strings.HasPrefix(e.RequestURI, "/version?") {
			t.Errorf("unexpected non-resource request %s %s", e.Verb, e.RequestURI)
		}
	}

	// The same user cannot write: the role really is read-only on the server.
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	err = cs.CoreV1().Nodes().Delete(ctx, "dc-1", metav1.DeleteOptions{})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("delete as read-only user: %v, want forbidden", err)
	}
}
