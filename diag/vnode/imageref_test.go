package vnode

import "testing"

func TestParseImageRef(t *testing.T) {
	tests := []struct {
		in                      string
		host, path, tag, digest string
		err                     bool
	}{
		{in: "nginx", host: "docker.io", path: "library/nginx"},
		{in: "nginx:1.27", host: "docker.io", path: "library/nginx", tag: "1.27"},
		{in: "library/nginx:1.27", host: "docker.io", path: "library/nginx", tag: "1.27"},
		{in: "bitnami/metrics-server:0.6.4", host: "docker.io", path: "bitnami/metrics-server", tag: "0.6.4"},
		{in: "registry.k8s.io/metrics-server/metrics-server:v0.7.2", host: "registry.k8s.io", path: "metrics-server/metrics-server", tag: "v0.7.2"},
		{in: "harbor.corp.local:8443/shop/web:1.4", host: "harbor.corp.local:8443", path: "shop/web", tag: "1.4"},
		{in: "harbor.corp.local:8443/shop/web", host: "harbor.corp.local:8443", path: "shop/web"},
		{in: "192.168.10.5:5000/nginx:latest", host: "192.168.10.5:5000", path: "nginx", tag: "latest"},
		{in: "localhost/app:dev", host: "localhost", path: "app", tag: "dev"},
		{in: "localhost:5000/app", host: "localhost:5000", path: "app"},
		{in: "[fd00::10]:5000/team/app:2", host: "[fd00::10]:5000", path: "team/app", tag: "2"},
		{in: "registry-cn-hangzhou.ack.aliyuncs.com/acs/metrics-server:v0.3.8.5-307cf45-aliyun", host: "registry-cn-hangzhou.ack.aliyuncs.com", path: "acs/metrics-server", tag: "v0.3.8.5-307cf45-aliyun"},
		{in: "registry.k8s.io/metrics-server/metrics-server@sha256:ffcb2bf004d6aa0a17d90e0247cf94f2865c8901dcab4427034c341951c239f9",
			host: "registry.k8s.io", path: "metrics-server/metrics-server", digest: "sha256:ffcb2bf004d6aa0a17d90e0247cf94f2865c8901dcab4427034c341951c239f9"},
		{in: " quay.io/prometheus/node-exporter:v1.8.2 ", host: "quay.io", path: "prometheus/node-exporter", tag: "v1.8.2"},
		{in: "", err: true},
		{in: "nginx:", err: true},
		{in: "harbor.corp.local/", err: true},
		{in: "nginx@sha256", err: true},
		{in: "a//b:1", err: true},
		// What the hand-written parser this replaced accepted and the
		// container runtimes refuse.
		{in: "Registry.Example.com/Team/X:v1", err: true},
		{in: "example.com/a/b:c:d", err: true},
		{in: "foo@sha256:zz", err: true},
		{in: "harbor.corp.local:8443/ms/metrics-server:v0.6.4@sha256:abc123", err: true},
	}
	for _, tt := range tests {
		got, err := parseImageRef(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("parseImageRef(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseImageRef(%q): %v", tt.in, err)
			continue
		}
		if got.Host != tt.host || got.Path != tt.path || got.Tag != tt.tag || got.Digest != tt.digest {
			t.Errorf("parseImageRef(%q) = %+v, want host %q path %q tag %q digest %q", tt.in, got, tt.host, tt.path, tt.tag, tt.digest)
		}
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when no version is named
	}{
		{"v0.5.2", "v0.5.2"},
		{"0.6.4", "v0.6.4"},
		{"v0.7", "v0.7"},
		{"V0.6.0", "v0.6.0"},
		{"v0.5.2-amd64", "v0.5.2"},
		{"v0.6.3-aliyun.1", "v0.6.3"},
		{"v0.3.8.5-307cf45-aliyun", "v0.3.8.5"},
		{"0.6.4-debian-12-r10", "v0.6.4"},
		{"v0.6.4+build.7", "v0.6.4"},
		{"v0.5.2_linux", "v0.5.2"},
		{"latest", ""},
		{"", ""},
		{"sha-3f2a9c1", ""},
		{"v1", ""},
		{"release-0.6", ""},
		{"v0.6.x", "v0.6"}, // the series is known, which is what matters
	}
	for _, tt := range tests {
		v, ok := parseVersion(tt.in)
		got := ""
		if ok {
			got = release(v)
		}
		if got != tt.want {
			t.Errorf("parseVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
