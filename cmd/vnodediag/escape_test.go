package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// hostile is what a container's waiting message can carry to the
// terminal of whoever diagnoses the cluster: a title change (OSC 0 ending
// in BEL), clear screen, a carriage return that overwrites the line, a
// backspace, NUL, DEL and a C1 CSI (U+009B).
const hostile = "\x1b]0;pwned\x07\x1b[2J\rvnode.registry-tls PASS\x08 nul\x00 del\x7f c1\u009b2J"

var ownColours = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// rawControls lists what a terminal would act on in out, the renderer's
// own colours aside.
func rawControls(out string) []string {
	out = ownColours.ReplaceAllString(out, "")
	var bad []string
	for i, r := range out {
		if r == '\n' || r == '\t' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) || (r == utf8.RuneError) {
			bad = append(bad, fmt.Sprintf("%U at %d", r, i))
		}
	}
	return bad
}

// A hostile pull message on a real API server flows into
// vnode.registry-tls (its evidence, the registry host in its summary and
// fix) and reaches the table only escaped; JSON carries it exactly.
func TestHostileStringsEscapedEndToEnd(t *testing.T) {
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	image := "harbor" + hostile + ".example:8443/shop/web:1"
	msg := kubelab.X509PullMessage(image) + " " + hostile
	pod := kubelab.ImagePullPod("shop", "web", "x7k2p", kubelab.ScenarioVNodeReady, "harbor.example:8443/shop/web:1", "ErrImagePull", msg)
	if err := lab.Apply(ctx, kubelab.VNode(kubelab.ScenarioVNodeReady, "type"), pod); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"-v"}, {"--color", "always", "-v"}, {"-o", "junit"}, {"-o", "html"}} {
		out, stderr, code := runBin(t, nil, append([]string{"diagnose", "--kubeconfig", lab.Kubeconfig, "--only", "vnode.registry-tls"}, args...)...)
		if code != 0 && code != 1 {
			t.Fatalf("%v: exit %d, stderr %s", args, code, stderr)
		}
		// Word by word: the table wraps long lines.
		for _, shown := range []string{`\x1b]0;pwned\x07\x1b[2J\x0dvnode.registry-tls`, `PASS\x08`, `nul\x00`, `del\x7f`, `c1\u009b2J`} {
			if !strings.Contains(out, shown) {
				t.Errorf("%v: %s is not shown escaped:\n%s", args, shown, out)
			}
		}
		if bad := rawControls(out + stderr); len(bad) > 0 {
			t.Errorf("%v: %d raw terminal controls reach the output, first %s:\n%q", args, len(bad), bad[0], out)
		}
	}
	out, _, _ := runBin(t, nil, "diagnose", "--kubeconfig", lab.Kubeconfig, "--only", "vnode.registry-tls", "-o", "json")
	rep := &pb.Report{}
	if err := protojson.Unmarshal([]byte(out), rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rep.Results {
		for _, e := range r.Evidence {
			found = found || e.Observed == "ErrImagePull: "+msg
		}
	}
	if !found {
		t.Errorf("JSON does not carry the message exactly:\n%s", out)
	}
	if bad := rawControls(out); len(bad) > 0 {
		t.Errorf("JSON carries raw terminal controls: %v", bad)
	}
}

// Log lines quote what peers and servers send; in JSON form, the C0
// controls are escaped by log/slog and DEL and C1 by jsonLogWriter.
func TestJSONLogsEscaped(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(jsonLogWriter{&b}, nil))
	log.Warn("peer message", "notification", hostile)
	if bad := rawControls(b.String()); len(bad) > 0 {
		t.Errorf("log line carries terminal controls %v: %q", bad, b.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(b.String()), &rec); err != nil || rec["notification"] != hostile {
		t.Errorf("log line does not carry the value exactly: %v %q", err, b.String())
	}
}
