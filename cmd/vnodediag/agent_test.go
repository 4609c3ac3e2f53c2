package main

import (
	"net"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// TestAgentOnce runs the real binary's `agent --once`: one round, one
// protojson line on stdout.
func TestAgentOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// No names and no resolv.conf to read: this test sends no DNS query.
	plan := writeFile(t, "plan.yaml", "dns:\n  resolvConf: /nonexistent/resolv.conf\n  vpcResolvers: []\n"+
		"targets: [{name: db, address: \""+l.Addr().String()+"\"}]\nmetadata: {disabled: true}\n")
	stdout, stderr, code := runBin(t, []string{"POD_NAME=agent-0", "NODE_NAME=vnode-1"}, "agent", "--config", plan, "--once")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines on stdout, want 1:\n%s", len(lines), stdout)
	}
	r := &pb.ProbeRound{}
	if err := protojson.Unmarshal([]byte(lines[0]), r); err != nil {
		t.Fatalf("not a ProbeRound: %v", err)
	}
	if r.Agent.GetPod() != "agent-0" || r.Agent.GetNode() != "vnode-1" || len(r.Connects) != 1 || r.Connects[0].Outcome != pb.ConnectResult_CONNECTED {
		t.Errorf("round %v", r)
	}
}

func TestAgentUsageErrors(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "targets: [{name: db, address: db.corp.example:5432}]\n")
	good := writeFile(t, "good.yaml", "metadata: {disabled: true}\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent"}, "agent: --config is required"},
		{[]string{"agent", "--config", bad}, `targets[0] "db": address: "db.corp.example:5432": host is not an IP address`},
		{[]string{"agent", "--config", good, "--tls-cert", "c.pem"}, "agent: tls: both a certificate and a key are needed"},
		{[]string{"agent", "--config", good, "--listen", "256.0.0.1:7444"}, "--listen 256.0.0.1:7444"},
	} {
		_, stderr, code := runBin(t, nil, tc.args...)
		if code != 64 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 64 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
