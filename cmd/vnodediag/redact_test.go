package main

import (
	"fmt"
	"strings"
	"testing"
)

// No secret of the configuration reaches stdout or stderr, in any output
// format or log level, while every source fails against unreachable
// endpoints (so their errors, which quote URLs and dial targets, are
// printed). One BGP password is a common word, "tcp": redaction must work
// on fields, not by replacing the word wherever it appears, which both
// garbles "dial tcp ..." and gives the password away.
func TestSecretsNeverPrinted(t *testing.T) {
	secrets := map[string]string{
		"kubeconfig token":         "kube-s3cret-token-4711",
		"kubeconfig URL password":  "pa55-w0rd-userinfo",
		"BGP password (not words)": "bgp-md5-s3cret-0042",
	}
	kc := writeFile(t, "kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://admin:%s@127.0.0.1:1"}}]
users: [{name: u, user: {token: %s}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, secrets["kubeconfig URL password"], secrets["kubeconfig token"]))
	// establishTimeout leaves gobgp time to report its failed connects,
	// whose text ("dial tcp ...") is where a replaced word would show.
	cfg := writeFile(t, "vnodediag.yaml", fmt.Sprintf(`kubernetes:
  kubeconfig: %s
bgp:
  localASN: 65010
  routerID: 192.0.2.10
  listenPort: -1
  establishTimeout: 12s
  peers:
    - {name: core-1, address: 127.0.0.2, port: 1, asn: 65001, password: tcp}
    - {name: core-2, address: 127.0.0.3, port: 1, asn: 65001, password: %s}
dns:
  onPremResolvers: [{name: dc1, address: "127.0.0.1:1"}]
  onPremZones: [corp.example]
  timeout: 1s
`, kc, secrets["BGP password (not words)"]))
	for _, args := range [][]string{
		{"-v", "--log-level", "debug"},
		{"-o", "json", "--log-format", "json", "--log-level", "debug"},
		{"-o", "yaml"},
		{"-o", "junit"},
		{"-o", "html"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runBin(t, nil, append([]string{"diagnose", "--config", cfg}, args...)...)
			if code != 1 && code != 2 {
				t.Fatalf("exit %d, want 1 or 2; stderr %s", code, stderr)
			}
			out := stdout + stderr
			for what, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("the %s %q is printed", what, s)
				}
			}
			if strings.Contains(out, "dial <redacted>") || strings.Contains(out, "<redacted> 0.0.0.0") {
				t.Errorf("the word tcp was replaced in an error, which gives the password away:\n%s", grepLines(out, "<redacted>"))
			}
			if !strings.Contains(out, "dial tcp") {
				t.Errorf("no failed dial reported (the test needs one to look at):\n%s", stdout)
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
