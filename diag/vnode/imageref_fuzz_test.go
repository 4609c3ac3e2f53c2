package vnode

import (
	"strings"
	"testing"
)

// FuzzParseImageRef: image references come from pod specs and pull
// messages, written by anyone who can create a pod. Any input parses or
// fails without panicking; a parsed reference has a registry host without
// a path, and reading back what it prints gives the same reference, so the
// host named in the insecure-registry advice is stable.
func FuzzParseImageRef(f *testing.F) {
	for _, s := range []string{
		"nginx", "nginx:1.27", "library/nginx:1.27", "bitnami/metrics-server:0.6.4",
		"registry.k8s.io/metrics-server/metrics-server:v0.7.2", "harbor.corp.local:8443/shop/web:1.4",
		"192.168.10.5:5000/nginx:latest", "localhost/app:dev", "localhost:5000/app", "[fd00::10]:5000/team/app:2",
		"registry.k8s.io/metrics-server/metrics-server@sha256:ffcb2bf004d6aa0a17d90e0247cf94f2865c8901dcab4427034c341951c239f9",
		"harbor.corp.local:8443/ms/metrics-server:v0.6.4@sha256:abc123", " quay.io/prometheus/node-exporter:v1.8.2 ",
		"", "nginx:", "harbor.corp.local/", "nginx@sha256", "a//b:1", "harbor\x1b]0;pwned\x07.example:8443/shop/web:1",
		"a:b/c:d@e:f@g", "::/::", "@:", "x/y:z/w",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseImageRef(s)
		if err != nil {
			return
		}
		if r.Host == "" || r.Path == "" || strings.Contains(r.Host, "/") {
			t.Fatalf("parseImageRef(%q) = %+v: empty host or path, or a host with a path", s, r)
		}
		if strings.HasPrefix(r.Path, "/") || strings.HasSuffix(r.Path, "/") || strings.Contains(r.Path, "//") {
			t.Fatalf("parseImageRef(%q): path %q", s, r.Path)
		}
		if n := r.Name(); n == "" || strings.Contains(n, "/") {
			t.Fatalf("parseImageRef(%q): name %q", s, n)
		}
		back := r.Repository()
		if r.Tag != "" {
			back += ":" + r.Tag
		}
		if r.Digest != "" {
			back += "@" + r.Digest
		}
		again, err := parseImageRef(back)
		if err != nil || again != r {
			t.Fatalf("parseImageRef(%q) = %+v, but %q reads back as %+v, %v", s, r, back, again, err)
		}
	})
}
