package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	cases := []struct {
		doc, want string
	}{
		{"", "empty file"},
		{"kubernetes:\n  kubeconfg: /x\n", `line 2: unknown field "kubeconfg"`},
		{"kubernets: {}\n", `line 1: unknown field "kubernets"`},
		{"kubernetes:\n  serviceCIDRs: [10.96.0.0/33]\n", `kubernetes: serviceCIDRs: "10.96.0.0/33" is not a CIDR`},
		{"kubernetes:\n  requestTimeout: soon\n", `kubernetes: requestTimeout: "soon" is not a positive duration like 30s`},
		{"kubernetes:\n  pageSize: -1\n", "kubernetes: pageSize: must not be negative, got -1"},
		{"runner:\n  checkTimeout: 5\n", `duration must be a string like "30s", got 5`},
		{"runner:\n  checkTimeout: 5 minutes\n", `duration "5 minutes": want a non-negative duration like "30s"`},
		{"kubernetes: [1, 2]\n", "cannot unmarshal array"},
		{"a: b: c\n", "mapping values are not allowed"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", c.doc, err, c.want)
		}
	}
}

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte("kubernetes:\n  context: prod\n  serviceCIDRs: [10.96.0.0/12]\nrunner:\n  checkTimeout: 10s\n  skip: [dns]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kubernetes.Context != "prod" || c.Runner.CheckTimeout.D() != 10*time.Second || c.Runner.Skip[0] != "dns" {
		t.Errorf("decoded %+v", c)
	}
}
