package kube_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

const rbacFile = "../../deploy/kubernetes/rbac.yaml"

func readClusterRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	b, err := os.ReadFile(rbacFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == "ClusterRole" {
			cr := &rbacv1.ClusterRole{}
			if err := yaml.UnmarshalStrict([]byte(doc), cr); err != nil {
				t.Fatal(err)
			}
			return cr
		}
	}
	t.Fatalf("%s has no ClusterRole", rbacFile)
	return nil
}

// TestShippedRBACIsReadOnly: the shipped role grants get/list/watch only.
func TestShippedRBACIsReadOnly(t *testing.T) {
	for _, r := range readClusterRole(t).Rules {
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("rule %v grants verb %q; vnodediag must only read", r.Resources, v)
			}
		}
	}
}

// access is one thing a request does or a role allows: a verb on a
// resource, by name or ("") on any.
type access struct {
	group, resource, verb, name string
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
	return s
}

// grants expands a role into what it allows.
func grants(cr *rbacv1.ClusterRole) []access {
	var out []access
	for _, r := range cr.Rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					for _, n := range names {
						out = append(out, access{g, res, v, n})
					}
				}
			}
		}
	}
	return out
}

func (a access) allows(req access) bool {
	return a.group == req.group && a.resource == req.resource && a.verb == req.verb && (a.name == "" || a.name == req.name)
}

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
			res = append(res, access{e.ObjectRef.APIGroup, r, e.Verb, e.ObjectRef.Name})
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

// TestShippedRBACIsExactlyWhatTheSourceReads runs a one-shot run as a user
// bound to nothing but the shipped role, against a real API server that
// audits every request, and compares in both directions: every request of
// the gather is granted by the role (and was allowed), and every grant of
// the role was used by the gather, so an unused or too broad grant fails
// here. The user cannot write, and the run leaves no goroutine behind.
func TestShippedRBACIsExactlyWhatTheSourceReads(t *testing.T) {
	lab := kubelab.StartAuditedT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		t.Fatal(err)
	}
	cr := readClusterRole(t)
	if _, err := lab.Client.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vnodediag-read-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "vnodediag-ro"}},
	}
	if _, err := lab.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := lab.UserConfig("vnodediag-ro")
	if err != nil {
		t.Fatal(err)
	}

	leaks := goleak.IgnoreCurrent()
	p, err := kube.ForRESTConfig(&kube.Config{PageSize: 4}, rc, "")
	if err != nil {
		t.Fatal(err)
	}
	var s *kube.Snapshot
	look := diag.Check{ID: "test.snapshot", Needs: diag.Needs(kube.Source), Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
		s = kube.Source.Get(in)
		return []*pb.Result{diag.Pass("read")}
	}}
	r := &diag.Runner{Providers: []diag.Provider{p}}
	rep := r.Run(ctx, []diag.Check{look})
	r.Close()
	goleak.VerifyNone(t, leaks)
	if st := rep.Sources[0]; st.State != pb.SourceStatus_OK {
		t.Fatalf("gather as read-only user: %v", st)
	}
	for part, err := range s.PartErrors {
		t.Errorf("part %s failed under the shipped role: %v", part, err)
	}
	if len(s.Nodes) != 9 || len(s.Pods) != 14 || s.ClusterUID == "" || len(s.ServiceCIDRs) == 0 {
		t.Errorf("snapshot: %d nodes, %d pods, uid %q, service CIDRs %v", len(s.Nodes), len(s.Pods), s.ClusterUID, s.ServiceCIDRs)
	}

	const sentinel = "vnodediag-audit-sentinel"
	if _, err := lab.Client.CoreV1().Namespaces().Get(ctx, sentinel, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("sentinel request: %v", err)
	}
	reqs, nonResource := requests(t, lab, "vnodediag-ro", sentinel)
	made := reqs
	if len(made) == 0 {
		t.Fatal("the audit log has no request of the gather")
	}
	role := grants(cr)
	for _, q := range made {
		if !slices.ContainsFunc(role, func(g access) bool { return g.allows(q) }) {
			t.Errorf("the gather made %s, which the shipped role does not grant", q)
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
		case g.name == "" && !slices.ContainsFunc(used, func(q access) bool { return q.name == "" }):
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
