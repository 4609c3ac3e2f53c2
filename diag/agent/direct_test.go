package agent_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/agent/probe"
	"github.com/vnodediag/vnodediag/test/vnodelab"
)

// TestAddressesWithMutualTLS: agents found by address, over mutual TLS, with
// a real agent on loopback. Without vnodediag's client certificate the path
// works but ProbeService refuses, and the snapshot says so.
func TestAddressesWithMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := vnodelab.NewCA(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("agent", []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ccert, ckey, err := ca.Issue("vnodediag", nil)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := probe.ServerTLS(cert, key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	a, err := probe.New(&probe.Config{
		Interval: diag.Duration(time.Hour),
		DNS:      probe.DNSConfig{VPCResolvers: []string{}, ResolvConf: "/nonexistent"},
		Targets:  []probe.Target{{Name: "db", Address: target.Addr().String()}},
		Metadata: probe.MetadataConfig{Disabled: true},
	}, probe.Options{Identity: probe.Identity{Node: "vnode-1"}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, lis, creds) }()
	defer func() { cancel(); <-done }()

	read := func(tls *agent.TLSConfig) *agent.Agent {
		p, err := agent.NewProvider(&agent.Config{Addresses: []string{lis.Addr().String()}, TLS: tls, DialTimeout: diag.Duration(2 * time.Second)}, diag.Env{})
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.Gather(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s := v.(*agent.Snapshot)
		if s.FromPods || len(s.Agents) != 1 || s.Agents[0].Log.Read {
			t.Fatalf("snapshot %+v", s)
		}
		return s.Agents[0]
	}
	got := read(&agent.TLSConfig{CAFile: ca.File, CertFile: ccert, KeyFile: ckey})
	if got.Direct.Outcome != agent.Connected || got.Direct.Info.GetNode() != "vnode-1" || got.Direct.Round == nil || got.Direct.LocalAddr != "127.0.0.1" {
		t.Errorf("with the client certificate: %+v", got.Direct)
	}
	got = read(&agent.TLSConfig{CAFile: ca.File})
	if got.Direct.Outcome != agent.Connected || got.Direct.Info != nil || got.Direct.InfoErr == "" {
		t.Errorf("without the client certificate: %+v", got.Direct)
	}
	got = read(nil)
	if got.Direct.Outcome != agent.Connected || got.Direct.Info != nil || !strings.Contains(got.Direct.InfoErr, "Unavailable") {
		t.Errorf("plaintext to a TLS agent: %+v", got.Direct)
	}
}
