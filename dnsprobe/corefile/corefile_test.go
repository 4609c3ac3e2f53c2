package corefile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Real-world Corefiles, as shipped by kubeadm, managed clusters and edited by
// hand; the same files seed the fuzz corpus.
func readCorefile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRealWorld(t *testing.T) {
	tests := []struct {
		file     string
		servers  [][]string // keys of each server block
		cluster  []string
		imports  int
		snippets []string
	}{
		{"kubeadm.Corefile", [][]string{{".:53"}}, []string{"cluster.local."}, 0, nil},
		{"hybrid.Corefile", [][]string{{"corp.example:53"}, {"svc.cloud.internal:53", "data.cloud.internal:53"}, {".:53"}}, []string{"cluster.local."}, 0, nil},
		{"custom-domain.Corefile", [][]string{{".:53"}}, []string{"k8s.corp.example."}, 0, nil},
		{"import.Corefile", [][]string{{"corp.example"}, {"dns://.:53"}}, []string{"cluster.local."}, 1, []string{"common"}},
		{"ack.Corefile", [][]string{{".:53"}}, []string{"cluster.local."}, 0, nil},
		{"legacy-proxy.Corefile", [][]string{{".:53"}}, []string{"cluster.local."}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			cf, err := Parse(readCorefile(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var keys [][]string
			for _, s := range cf.Servers {
				keys = append(keys, s.Keys)
			}
			if !slices.EqualFunc(keys, tc.servers, slices.Equal) {
				t.Errorf("server keys %q, want %q", keys, tc.servers)
			}
			if got := cf.ClusterDomains(); !slices.Equal(got, tc.cluster) {
				t.Errorf("cluster domains %q, want %q", got, tc.cluster)
			}
			if len(cf.Imports) != tc.imports {
				t.Errorf("%d top-level imports, want %d", len(cf.Imports), tc.imports)
			}
			for _, s := range tc.snippets {
				if _, ok := cf.Snippets[s]; !ok {
					t.Errorf("snippet %q missing", s)
				}
			}
		})
	}
}

func TestRouteFor(t *testing.T) {
	tests := []struct {
		file, zone string
		block      string // first key of the serving block, "" for none
		targets    []string
	}{
		{"kubeadm.Corefile", "corp.example", ".:53", []string{"/etc/resolv.conf"}},
		{"hybrid.Corefile", "corp.example", "corp.example:53", []string{"10.0.0.53:53", "10.0.0.54:53"}},
		{"hybrid.Corefile", "sub.corp.example", "corp.example:53", []string{"10.0.0.53:53", "10.0.0.54:53"}},
		{"hybrid.Corefile", "data.cloud.internal", "svc.cloud.internal:53", []string{"10.1.0.10:53", "10.1.0.11:5353"}},
		{"hybrid.Corefile", "other.example", ".:53", []string{"10.0.0.53:53"}},
		// the . block forwards everything except corp.example
		{"import.Corefile", "corp.example", "corp.example", []string{"10.0.0.53:53"}},
		{"import.Corefile", "svc.cloud.internal", "dns://.:53", nil},
		{"import.Corefile", "x.example", "dns://.:53", []string{"8.8.8.8:53"}},
		{"legacy-proxy.Corefile", "corp.example", ".:53", []string{"10.0.0.53:53"}},
		{"custom-domain.Corefile", "svc.cloud.internal", ".:53", []string{"tls://1.1.1.1"}},
		{"ack.Corefile", "corp.example", ".:53", []string{"/etc/resolv.conf"}},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.zone, func(t *testing.T) {
			cf, err := Parse(readCorefile(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			r := cf.RouteFor(tc.zone, "53")
			block := ""
			if r.Server != nil {
				block = r.Server.Keys[0]
			}
			if block != tc.block {
				t.Errorf("served by %q, want %q", block, tc.block)
			}
			if !slices.Equal(r.Targets, tc.targets) {
				t.Errorf("targets %q, want %q", r.Targets, tc.targets)
			}
		})
	}
}

func TestParseStructure(t *testing.T) {
	src := `# leading comment
"quoted.example:53" example.net:1053 {   # trailing comment
    hosts {
        10.0.0.1 "a b" # not an arg
        fallthrough
    }
    template IN A {
        answer "{{ .Name }} 60 IN A 10.0.0.1"
    }
    forward . 10.0.0.53 {
        except a.example b.example
        policy sequential
    }
}
`
	cf, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	s := cf.Servers[0]
	if s.Line != 2 || len(s.Zones) != 2 || s.Zones[0] != (Zone{Scheme: "dns", Name: "quoted.example.", Port: "53"}) || s.Zones[1].Port != "1053" {
		t.Fatalf("server %+v zones %+v", s, s.Zones)
	}
	hosts := s.Directives[0]
	if hosts.Name != "hosts" || len(hosts.Block) != 2 || !slices.Equal(hosts.Block[0].Args, []string{"a b"}) || hosts.Block[0].Line != 4 {
		t.Errorf("hosts %+v block %+v", hosts, hosts.Block[0])
	}
	tmpl := s.Directives[1]
	if !slices.Equal(tmpl.Block[0].Args, []string{"{{ .Name }} 60 IN A 10.0.0.1"}) {
		t.Errorf("template answer %q", tmpl.Block[0].Args)
	}
	fwd := s.Directives[2]
	if fwd.Line != 10 || len(fwd.Block) != 2 || fwd.Block[0].Name != "except" {
		t.Errorf("forward %+v", fwd)
	}
	if r := cf.RouteFor("b.example", "53"); r.Directive != nil {
		t.Errorf("b.example is excepted, got %+v", r.Directive)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src  string
		line int
		msg  string
	}{
		{".:53 {\n  forward . 1.1.1.1\n", 1, "'{' is never closed"},
		{".:53 {\n}\n}\n", 3, "unexpected '}'"},
		{".:53 {\n  hosts {\n    1.2.3.4 a\n", 2, "'{' is never closed"},
		{".:53 {\n  log \"oops\n}\n", 2, "unterminated quoted string"},
		{".:53\nforward . 1.1.1.1\n", 1, `server block ".:53" must be followed by '{'`},
		{".:53", 1, `server block ".:53" must be followed by '{'`},
		{"{\n}\n", 1, "'{' without server block keys"},
		{"\n\nexample.org:abc {\n}\n", 3, `server block key "example.org:abc": port "abc" is not a number`},
		{"ftp://example.org {\n}\n", 1, `server block key "ftp://example.org": unknown scheme "ftp"`},
		{".:53 {\n  {\n}\n", 2, "unexpected '{'"},
		{"import\n", 1, "import needs a file or snippet name"},
		{"() {\n}\n", 1, "snippet without a name"},
		{"\xff {\n}\n", 1, "not valid UTF-8"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.src)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%q: error %v, want *Error", tc.src, err)
			continue
		}
		if pe.Line != tc.line || pe.Msg != tc.msg {
			t.Errorf("%q: line %d %q, want line %d %q", tc.src, pe.Line, pe.Msg, tc.line, tc.msg)
		}
	}
}

func TestNormalizeTarget(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":         "10.0.0.1:53",
		"10.0.0.1:5353":    "10.0.0.1:5353",
		"dns://10.0.0.1":   "10.0.0.1:53",
		"[2001:db8::1]:53": "[2001:db8::1]:53",
		"2001:db8::1":      "[2001:db8::1]:53",
		"/etc/resolv.conf": "/etc/resolv.conf",
		"tls://1.1.1.1":    "tls://1.1.1.1",
	} {
		if got := NormalizeTarget(in); got != want {
			t.Errorf("NormalizeTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	for in, want := range map[string]string{
		"corp.example": "corp.example.", "CORP.Example.": "corp.example.", " a.b ": "a.b.", "": ".", ".": ".",
	} {
		if got := CanonicalName(in); got != want {
			t.Errorf("CanonicalName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse: the parser never panics, every error carries a line inside
// the input, and whatever parses can be queried. The seed corpus is the
// real-world Corefiles in testdata plus the inputs under testdata/fuzz.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.Corefile"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, src string) {
		cf, err := Parse(src)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if pe.Line < 1 || pe.Line > strings.Count(src, "\n")+1 {
				t.Fatalf("error line %d outside the input (%d lines)", pe.Line, strings.Count(src, "\n")+1)
			}
			return
		}
		_ = cf.ClusterDomains()
		for _, z := range []string{".", "corp.example", "cluster.local"} {
			r := cf.RouteFor(z, "53")
			if r.Directive != nil && r.Server == nil {
				t.Fatal("a forward without a server block")
			}
		}
	})
}
