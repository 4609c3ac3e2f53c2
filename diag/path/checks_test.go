package path

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/diag/agent"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func snap(agents ...*agent.Agent) *agent.Snapshot {
	return &agent.Snapshot{Discovery: "pods app=x in namespace vnodediag", FromPods: true, Direct: true, Port: 7444,
		MaxAge: 5 * time.Minute, Version: "v1.0.0", Now: now, Agents: agents}
}

func round(seq uint64, age time.Duration, connects ...*pb.ConnectResult) *pb.ProbeRound {
	end := now.Add(-age)
	return &pb.ProbeRound{Sequence: seq, StartTime: timestamppb.New(end.Add(-time.Second)), EndTime: timestamppb.New(end),
		Agent: &pb.AgentInfo{Version: "v1.0.0", PodIp: "192.168.10.17"}, Connects: connects}
}

func conn(name, addr string, o pb.ConnectResult_Outcome, err string) *pb.ConnectResult {
	return &pb.ConnectResult{Name: name, Address: addr, Outcome: o, Error: err, Rtt: durationpb.New(3 * time.Millisecond)}
}

// pod is an agent pod on vnode-1; mut shapes it.
func pod(mut func(a *agent.Agent)) *agent.Agent {
	a := &agent.Agent{Namespace: "vnodediag", Pod: "agent-1", Node: "vnode-1", PodIP: "192.168.10.17", Phase: "Running", Ready: true,
		Address: "192.168.10.17:7444", Direct: agent.Direct{Outcome: agent.Connected, LocalAddr: "10.1.0.5", ConnectTime: 2 * time.Millisecond,
			Info: &pb.AgentInfo{Version: "v1.0.0"}}}
	if mut != nil {
		mut(a)
	}
	return a
}

type want struct {
	status pb.Status
	substr []string
}

func check(t *testing.T, got []*pb.Result, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		for _, r := range got {
			t.Logf("%s %s", r.Status, r.Summary)
		}
		t.Fatalf("%d results, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		r := got[i]
		all := r.Summary + "\n" + r.Remediation
		for _, e := range r.Evidence {
			all += "\n" + e.Label + ": " + e.Observed
		}
		if r.Status != w.status {
			t.Errorf("result %d: %s %q, want %s", i, r.Status, r.Summary, w.status)
		}
		for _, s := range w.substr {
			if !strings.Contains(all, s) {
				t.Errorf("result %d (%s %q) lacks %q in:\n%s", i, r.Status, r.Summary, s, all)
			}
		}
		if len(r.Objects) == 0 && r.Status != pb.Status_SKIP {
			t.Errorf("result %d names no object", i)
		}
	}
}

func TestOnPremToCloud(t *testing.T) {
	fresh := func(a *agent.Agent) { a.Log = agent.Log{Read: true, Round: round(7, 30*time.Second), Lines: 1} }
	for _, tc := range []struct {
		name string
		s    *agent.Snapshot
		want []want
	}{
		{"connected", snap(pod(nil)), []want{{pb.Status_PASS, []string{"agent vnodediag/agent-1 on vnode-1 at 192.168.10.17:7444", "ProbeService answered"}}}},
		{"tls failure", snap(pod(func(a *agent.Agent) { a.Direct.Info, a.Direct.InfoErr = nil, "authentication handshake failed" })),
			[]want{{pb.Status_WARN, []string{"ProbeService did not answer: authentication handshake failed", "agent.tls"}}}},
		{"refused", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.Refused, Err: "connect: connection refused", LocalAddr: "10.1.0.5"}
		})),
			[]want{{pb.Status_WARN, []string{"nothing listens on 192.168.10.17:7444", "the path works", "agent.port"}}}},
		{"timed out, agent alive in its log", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout", LocalAddr: "10.1.0.5"}
			fresh(a)
		})), []want{{pb.Status_FAIL, []string{"TCP timed out", "between 10.1.0.5 and the ECI pod", "admit 10.1.0.5 on TCP 7444",
			"bgp.*", "cloud.vpc-onprem-routes", "cloud.security-groups", "round 7, 30s old: the agent runs, so the path is what is broken"}}}},
		{"timed out, log stale", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
			a.Log = agent.Log{Read: true, Round: round(7, time.Hour)}
		})), []want{{pb.Status_FAIL, []string{"between this host and the ECI pod", "newest round 1h0m0s old, older than agent.maxAge 5m0s: the agent itself may be down"}}}},
		{"timed out, log unreadable", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
			a.Log = agent.Log{Read: true, Err: `pods "agent-1" is forbidden`}
		})), []want{{pb.Status_FAIL, []string{`not read: pods "agent-1" is forbidden`}}}},
		{"unreachable", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.Unreachable, Err: "connect: network is unreachable"}
		})),
			[]want{{pb.Status_FAIL, []string{"no route to agent vnodediag/agent-1", "network is unreachable", "learned on-prem"}}}},
		{"dial error", snap(pod(func(a *agent.Agent) { a.Direct = agent.Direct{Outcome: agent.DialError, Err: "too many open files"} })),
			[]want{{pb.Status_ERROR, []string{"could not dial", "too many open files"}}}},
		{"no pod IP", snap(pod(func(a *agent.Agent) {
			a.PodIP, a.Address = "", ""
			a.Direct = agent.Direct{Outcome: agent.NotDialled, Err: "the pod has no IP yet"}
		})), []want{{pb.Status_SKIP, []string{"not dialled: the pod has no IP yet"}}}},
		{"direct off", func() *agent.Snapshot { s := snap(pod(nil)); s.Direct = false; return s }(),
			[]want{{pb.Status_SKIP, []string{"agent.direct is false"}}}},
		{"no agents", snap(), []want{{pb.Status_SKIP, []string{"no agent found", "vnode.agent"}}}},
		{"address agent", snap(&agent.Agent{Address: "192.168.10.17:7444", Direct: agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}}),
			[]want{{pb.Status_FAIL, []string{"agent 192.168.10.17:7444 at 192.168.10.17:7444", "not read (agents found by address)"}}}},
		{"two agents", snap(pod(nil), pod(func(a *agent.Agent) {
			a.Pod, a.Node = "agent-2", "vnode-2"
			a.Direct = agent.Direct{Outcome: agent.TimedOut}
		})), []want{{pb.Status_PASS, []string{"vnode-1"}}, {pb.Status_FAIL, []string{"agent vnodediag/agent-2 on vnode-2"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, evalOnPremToCloud(tc.s), tc.want...) })
	}
}

func TestCloudToOnPrem(t *testing.T) {
	withRound := func(r *pb.ProbeRound, direct bool) *agent.Agent {
		return pod(func(a *agent.Agent) {
			if direct {
				a.Direct.Round = r
			} else {
				a.Direct = agent.Direct{Outcome: agent.TimedOut}
				a.Log = agent.Log{Read: true, Round: r}
			}
		})
	}
	db := func(o pb.ConnectResult_Outcome, err string) *pb.ConnectResult {
		return conn("postgres", "10.0.10.5:5432", o, err)
	}
	for _, tc := range []struct {
		name string
		s    *agent.Snapshot
		want []want
	}{
		{"connected", snap(withRound(round(3, 0, db(pb.ConnectResult_CONNECTED, "")), true)),
			[]want{{pb.Status_PASS, []string{"connects to postgres (10.0.10.5:5432)", "via ProbeService.Run"}}}},
		{"refused", snap(withRound(round(3, time.Minute, db(pb.ConnectResult_REFUSED, "connection refused")), false)),
			[]want{{pb.Status_WARN, []string{"the path from the cloud works", "nothing listens on 10.0.10.5:5432", "Not a network problem", "via pods/log"}}}},
		{"timed out", snap(withRound(round(3, time.Minute, db(pb.ConnectResult_TIMED_OUT, "i/o timeout")), false)),
			[]want{{pb.Status_FAIL, []string{"TCP timed out", "ECI pod 192.168.10.17", "does not send 10.0.10.5 to the VBR", "cloud.vpc-onprem-routes"}}}},
		{"unreachable", snap(withRound(round(3, 0, db(pb.ConnectResult_UNREACHABLE, "connect: network is unreachable")), true)),
			[]want{{pb.Status_FAIL, []string{"has no route to postgres", "network is unreachable", "VPC route table must send"}}}},
		{"error", snap(withRound(round(3, 0, db(pb.ConnectResult_ERROR, "not probed: context canceled")), true)),
			[]want{{pb.Status_ERROR, []string{"could not probe", "context canceled"}}}},
		{"two targets", snap(withRound(round(3, 0, db(pb.ConnectResult_CONNECTED, ""), conn("kubelet", "10.0.1.11:10250", pb.ConnectResult_TIMED_OUT, "")), true)),
			[]want{{pb.Status_PASS, nil}, {pb.Status_FAIL, []string{"kubelet (10.0.1.11:10250)"}}}},
		{"no targets", snap(withRound(round(3, 0), true)), []want{{pb.Status_SKIP, []string{"its plan has no targets"}}}},
		{"stale log only", snap(withRound(round(3, 6*time.Minute, db(pb.ConnectResult_CONNECTED, "")), false)),
			[]want{{pb.Status_ERROR, []string{"no fresh round", "via pods/log", "6m0s old, older than agent.maxAge 5m0s", "timed out"}}}},
		{"nothing", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
			a.Log = agent.Log{Read: true, Err: "container not found"}
		})), []want{{pb.Status_ERROR, []string{"neither path gave one", "failed: container not found", "timed out: i/o timeout"}}}},
		{"newest of both paths", snap(pod(func(a *agent.Agent) {
			a.Direct.Round = round(9, 0, db(pb.ConnectResult_CONNECTED, ""))
			a.Log = agent.Log{Read: true, Round: round(8, time.Minute, db(pb.ConnectResult_TIMED_OUT, ""))}
		})), []want{{pb.Status_PASS, []string{"9 via ProbeService.Run"}}}},
		{"no agents", snap(), []want{{pb.Status_SKIP, []string{"no agent found"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, evalCloudToOnPrem(tc.s), tc.want...) })
	}
}

// TestREADME keeps the README's check table and Checks() in step.
func TestREADME(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, line := range strings.Split(string(b), "\n") {
		m := regexp.MustCompile("^\\| `(path\\.[a-z0-9-]+)` \\|").FindStringSubmatch(line)
		if m == nil {
			continue
		}
		documented = append(documented, m[1])
		if cols := strings.Split(strings.Trim(line, "|"), " | "); len(cols) != 4 {
			t.Errorf("README row %s has %d columns, want ID, proves, failure, fix", m[1], len(cols))
		}
	}
	var ids []string
	for _, c := range Checks() {
		ids = append(ids, c.ID)
		if c.Title == "" || c.Reference == "" || len(c.Needs) == 0 || c.Run == nil {
			t.Errorf("check %s is incomplete", c.ID)
		}
	}
	slices.Sort(documented)
	if !slices.Equal(documented, ids) {
		t.Errorf("README documents %v, Checks() has %v", documented, ids)
	}
}
