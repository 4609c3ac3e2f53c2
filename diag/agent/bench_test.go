package agent_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/dnslab"
	"github.com/vnodediag/vnodediag/test/vnodelab"
)

// scaleLab is the lab with a plan of 200 names (100 per side, most of them
// unknown to the resolvers) and 50 targets: 48 connect, one refuses, one is
// black-holed. Probe deadlines are 2 s.
func scaleLab(b *testing.B) *vnodelab.Lab {
	var names []dnsprobe.Name
	for i := 0; len(names) < 198; i++ {
		names = append(names, dnsprobe.Name{Name: fmt.Sprintf("host%d.%s", i, dnslab.OnPremZone)},
			dnsprobe.Name{Name: fmt.Sprintf("svc%d.%s", i, dnslab.PrivateZone)})
	}
	return vnodelab.StartT(b, vnodelab.Options{Exec: vnodelab.SelfExec, Interval: time.Hour, Timeout: 2 * time.Second,
		ExtraNames: names, ExtraOpenTargets: 48, Targets: []string{vnodelab.TargetRefused, vnodelab.TargetBlackholed}})
}

// BenchmarkAgentRound runs one probe round of 200 names and 50 targets,
// one black-holed, in the agent (a real process in the lab VNode's
// namespace) through ProbeService.Run, and reports the round's wall time
// (the agent's own start and end) beside its slowest probe deadline.
// Times are the maximum over the iterations; run it with -benchtime 5x.
func BenchmarkAgentRound(b *testing.B) {
	l := scaleLab(b)
	cfg := l.AgentConfig()
	cfg.RunTimeout = diag.Duration(time.Minute)
	var wall time.Duration
	var r *pb.ProbeRound
	for b.Loop() {
		a := gather(b, l.Kube.Client, cfg).Agents[0]
		if a.Direct.Round == nil {
			b.Fatalf("no round over ProbeService: %+v", a.Direct)
		}
		r = a.Direct.Round
		wall = max(wall, r.EndTime.AsTime().Sub(r.StartTime.AsTime()))
	}
	plan := r.Agent.Plan
	deadline := max(plan.DnsTimeout.AsDuration(), plan.ConnectTimeout.AsDuration())
	if n, t := len(plan.Names), len(plan.Targets); n != 200 || t != 50 {
		b.Fatalf("plan has %d names and %d targets, want 200 and 50", n, t)
	}
	timedOut := 0
	for _, c := range r.Connects {
		if c.Outcome == pb.ConnectResult_TIMED_OUT {
			timedOut++
		}
	}
	if timedOut != 1 {
		b.Fatalf("%d targets timed out, want the black-holed one", timedOut)
	}
	b.ReportMetric(float64(len(r.Dns)), "queries")
	b.ReportMetric(float64(len(r.Connects)), "connects")
	b.ReportMetric(float64(wall.Milliseconds()), "round-ms")
	b.ReportMetric(float64(deadline.Milliseconds()), "slowest-deadline-ms")
	b.ReportMetric(float64(wall)/float64(deadline), "round/deadline")
}

// BenchmarkAgentNewestRound reads the newest round of an agent whose log
// is 10 MB, through the real API server and the lab VNode's kubelet API:
// the source asks for the tail (tailLines, limitBytes); the baseline reads
// the whole log, as `kubectl logs` does. Both in one run, and their ratio.
func BenchmarkAgentNewestRound(b *testing.B) {
	l := vnodelab.StartT(b, vnodelab.Options{Exec: vnodelab.SelfExec, Interval: time.Hour, Targets: []string{vnodelab.TargetOpen}})
	logFile, err := l.Node.LogFile(l.Namespace, l.Pod)
	if err != nil {
		b.Fatal(err)
	}
	size := growLog(b, logFile, 10<<20)
	// The source as a run reads it, without the direct path: list the
	// agent pods, read the tail of the log, find the newest round.
	cfg := l.AgentConfig()
	cfg.Direct = new(bool)
	ctx := context.Background()
	var tail, whole time.Duration
	var n int
	for b.Loop() {
		start := time.Now()
		a := gather(b, l.Kube.Client, cfg).Agents[0]
		if a.Log.Round == nil {
			b.Fatalf("no round in the tail: %s", a.LogState())
		}
		tail += time.Since(start)
		n++

		start = time.Now()
		rc, err := l.Kube.Client.CoreV1().Pods(l.Namespace).GetLogs(l.Pod, &corev1.PodLogOptions{Container: "agent"}).Stream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || got < size {
			b.Fatalf("whole log: %d bytes, %v", got, err)
		}
		whole += time.Since(start)
	}
	b.ReportMetric(float64(size)/(1<<20), "log-MiB")
	b.ReportMetric(float64(tail.Microseconds())/float64(n)/1000, "tail-ms")
	b.ReportMetric(float64(whole.Microseconds())/float64(n)/1000, "whole-log-ms")
	b.ReportMetric(float64(tail)/float64(whole), "tail/whole")
}

// growLog appends copies of the log's own newest round (a fresh sequence
// each) until the file is larger than size: the log of an agent that ran for
// days. It returns the new size.
func growLog(b *testing.B, path string, size int64) int64 {
	b.Helper()
	buf, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	r, _, _ := agent.NewestRound(buf)
	if r == nil {
		b.Fatalf("no round in %s", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	total := st.Size()
	var sb strings.Builder
	for total < size {
		r.Sequence++
		line, err := protojson.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		sb.Reset()
		sb.Write(line)
		sb.WriteByte('\n')
		n, err := f.WriteString(sb.String())
		if err != nil {
			b.Fatal(err)
		}
		total += int64(n)
	}
	return total
}
