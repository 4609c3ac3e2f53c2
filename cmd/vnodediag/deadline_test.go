package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// hungListener accepts TCP connections and never reads or writes: an API
// server, a DNS server over TCP or a BGP peer that is alive but mute.
func hungListener(t *testing.T, addr string) net.Listener {
	l, _ := diagtest.HungTCP(t, addr)
	return l
}

// hungDNS is a DNS server that reads every UDP query and never replies,
// and on the same port accepts TCP and never answers.
func hungDNS(t *testing.T) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		l.Close()
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
		t.Cleanup(func() { pc.Close() })
		return hungListener(t, pc.LocalAddr().String()).Addr().String()
	}
	t.Fatal("no UDP port with a free TCP twin")
	return ""
}

// hungConfigs returns, per source, a configuration whose endpoints accept
// and never answer, with every per-source deadline far beyond the run's,
// so that only the run's deadline or an interrupt can end it; "all" has
// the three sources at once.
func hungConfigs(t *testing.T) map[string]string {
	api := hungListener(t, "127.0.0.1:0").Addr().String()
	kc := writeFile(t, "kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: hung-test-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, api))
	_, bgpPort, _ := net.SplitHostPort(hungListener(t, "127.0.0.1:0").Addr().String())
	dnsAddr := hungDNS(t)
	sections := map[string]string{
		"kube": fmt.Sprintf("kubernetes:\n  kubeconfig: %s\n  requestTimeout: 75s\n", kc),
		"bgp": fmt.Sprintf("bgp:\n  localASN: 65010\n  routerID: 192.0.2.10\n  listenPort: -1\n  establishTimeout: 60s\n"+
			"  peers:\n    - {name: hung, address: 127.0.0.1, port: %s, asn: 65001}\n", bgpPort),
		"dns": fmt.Sprintf("dns:\n  onPremResolvers: [{name: hung, address: %q}]\n  onPremZones: [corp.example]\n"+
			"  privateZones: [svc.cloud.internal]\n  privateZoneNames: [{name: api.svc.cloud.internal}]\n  timeout: 30s\n", dnsAddr),
	}
	const runner = "runner:\n  sourceTimeout: 60s\n  checkTimeout: 60s\n"
	out := map[string]string{}
	all := runner
	for name, s := range sections {
		out[name] = writeFile(t, name+".yaml", s+runner)
		all += s
	}
	out["all"] = writeFile(t, "all.yaml", all)
	return out
}

// started is a vnodediag process whose output is collected, and may be
// read while it runs.
type started struct {
	cmd            *exec.Cmd
	stdout, stderr diagtest.SyncBuffer
	done           chan struct{}
	ended          time.Time // when it exited, once done is closed
}

func startBin(t *testing.T, args ...string) *started {
	t.Helper()
	s := &started{cmd: exec.Command(binPath, args...), done: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "KUBECONFIG=")
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); s.ended = time.Now(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// waitFor waits until the process's stderr matches re (at most 20 s) and
// returns the match's first group.
func (s *started) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(s.stderr.String()); m != nil {
			return m[len(m)-1]
		}
		select {
		case <-s.done:
			t.Fatalf("exited (%s) before %s: %s", s.cmd.ProcessState, re, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 20 s: %s", re, s.stderr.String())
		}
	}
}

// wait returns how long the process took to exit from since (at most
// limit, then it is killed) and its exit code.
func (s *started) wait(t *testing.T, since time.Time, limit time.Duration) (time.Duration, int) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(time.Until(since.Add(limit))):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("still running %s after %s; killed", limit, since.Format("15:04:05.000"))
	}
	return time.Since(since), s.cmd.ProcessState.ExitCode()
}

// partialReport checks that stdout is a report with at least one result
// and that no check passed for a source that never answered.
func (s *started) partialReport(t *testing.T) *pb.Report {
	t.Helper()
	rep := &pb.Report{}
	if err := protojson.Unmarshal([]byte(s.stdout.String()), rep); err != nil {
		t.Errorf("no report on stdout (%v); stderr: %s", err, s.stderr.String())
		return nil
	}
	if len(rep.Results) == 0 {
		t.Error("the report has no result")
	}
	if rep.GetSummary().GetError() == 0 {
		t.Errorf("no ERROR result for sources that never answer: %v", rep.GetSummary())
	}
	return rep
}

// The whole run ends within --timeout + 1 s, and within 1 s of Ctrl-C with
// exit 130 and what finished, against an HTTPS API server, a DNS server
// (UDP and TCP) and a BGP peer that accept and never answer. The bounds are
// the promise under test; the per-source deadlines are set far beyond them.
func TestHungServersDeadlines(t *testing.T) {
	cfgs := hungConfigs(t)
	for _, src := range []string{"dns", "kube", "bgp", "all"} {
		t.Run(src+"/timeout", func(t *testing.T) {
			const timeout = 3 * time.Second
			start := time.Now()
			s := startBin(t, "diagnose", "--config", cfgs[src], "-o", "json", "--timeout", timeout.String())
			took, code := s.wait(t, start, timeout+10*time.Second)
			if took > timeout+time.Second {
				t.Errorf("took %s with --timeout %s", took.Round(time.Millisecond), timeout)
			}
			// 2: ERROR results (incomplete); 1: a check could already
			// judge the mute server (a BGP session stuck in OPENSENT).
			if code != 2 && code != 1 {
				t.Errorf("exit %d, want 2 (incomplete) or 1; stderr: %s", code, s.stderr.String())
			}
			s.partialReport(t)
		})
		t.Run(src+"/interrupt", func(t *testing.T) {
			s := startBin(t, "diagnose", "--config", cfgs[src], "-o", "json", "--timeout", "5m")
			time.Sleep(1500 * time.Millisecond) // every source is waiting on its mute server
			sent := time.Now()
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			took, code := s.wait(t, sent, 10*time.Second)
			if took > time.Second {
				t.Errorf("took %s after SIGINT", took.Round(time.Millisecond))
			}
			if code != 130 {
				t.Errorf("exit %d, want 130; stderr: %s", code, s.stderr.String())
			}
			if !strings.Contains(s.stderr.String(), "vnodediag: interrupted; reporting what finished") {
				t.Errorf("stderr: %s", s.stderr.String())
			}
			s.partialReport(t)
		})
	}
	t.Run("all/second-interrupt", func(t *testing.T) {
		s := startBin(t, "diagnose", "--config", cfgs["all"], "-o", "json", "--timeout", "5m")
		time.Sleep(1500 * time.Millisecond)
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		time.Sleep(100 * time.Millisecond)
		sent := time.Now()
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		took, code := s.wait(t, sent, 10*time.Second)
		if took > time.Second || code != 130 {
			t.Errorf("second SIGINT: exit %d after %s, want 130 at once; stderr: %s", code, took.Round(time.Millisecond), s.stderr.String())
		}
	})
}
