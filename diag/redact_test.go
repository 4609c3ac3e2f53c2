package diag

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func TestRedactURLs(t *testing.T) {
	cases := []struct{ in, want string }{
		{`Get "https://admin:hunter2@127.0.0.1:6443/version?timeout=30s": EOF`, `Get "https://127.0.0.1:6443/version?timeout=30s": EOF`},
		{"https://admin:xxxxx@k8s.corp:6443", "https://k8s.corp:6443"},
		{"https://token@k8s.corp", "https://k8s.corp"},
		{"https://admin:p@ss@k8s.corp/x", "https://k8s.corp/x"},                                // "@" in the password
		{`parse "https://admin:pa/ss@k8s.corp": invalid`, `parse "https://k8s.corp": invalid`}, // "/" in it
		{"https://u:tcp@[::1]:6443 and http://v:w@h2/", "https://[::1]:6443 and http://h2/"},
		{"dial tcp 10.0.0.1:179: connection refused", "dial tcp 10.0.0.1:179: connection refused"},
		{"mail ops@corp.example, see https://docs.example/a@b", "mail ops@corp.example, see https://b"},
		{"no url here", "no url here"},
	}
	for _, c := range cases {
		if got := RedactURLs(c.in); got != c.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for in, want := range map[string]string{
		"https://admin:hunter2@127.0.0.1:6443": "https://127.0.0.1:6443",
		"admin:hunter2@127.0.0.1:6443":         "127.0.0.1:6443",
		"127.0.0.1:6443":                       "127.0.0.1:6443",
		"a b@c":                                "c",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReportCarriesNoURLCredentials: whatever a source or a check puts in
// its texts, the report carries no URL userinfo.
func TestReportCarriesNoURLCredentials(t *testing.T) {
	const url = "https://admin:hunter2@10.0.0.1:6443"
	p := &fakeProvider{name: SourceBGP, err: &testErr{"dial " + url + ": refused"}}
	leaky := check("a.leaky", nil, func(context.Context, *Inputs) []*pb.Result {
		r := Fail("server %s", url)
		r.Evidence = []*pb.Evidence{Ev(url, url, url)}
		r.Objects = []*pb.Object{Obj("URL", "", url)}
		r.Remediation = "curl " + url
		return []*pb.Result{r}
	})
	r := &Runner{
		Providers: []Provider{p},
		Identify:  func(*Inputs) *pb.ClusterIdentity { return &pb.ClusterIdentity{Server: "admin:hunter2@10.0.0.1:6443"} },
	}
	rep := r.Run(context.Background(), []Check{leaky, check("b.bgp", []SourceName{SourceBGP}, nil)})
	b, err := protojson.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "admin"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("report contains %q:\n%s", secret, b)
		}
	}
	if !strings.Contains(string(b), "10.0.0.1:6443") {
		t.Errorf("the server address itself must stay:\n%s", b)
	}
}

type testErr struct{ s string }

func (e *testErr) Error() string { return e.s }
