package path

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/diagtest"
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

func TestOnPremToCloud(t *testing.T) {
	fresh := func(a *agent.Agent) { a.Log = agent.Log{Read: true, Round: round(7, 30*time.Second), Lines: 1} }
	for _, tc := range []struct {
		name string
		s    *agent.Snapshot
		want []diagtest.Want
	}{
		{"connected", snap(pod(nil)), []diagtest.Want{diagtest.W(pb.Status_PASS, "agent vnodediag/agent-1 on vnode-1 at 192.168.10.17:7444", "ProbeService answered")}},
		{"tls failure", snap(pod(func(a *agent.Agent) { a.Direct.Info, a.Direct.InfoErr = nil, "authentication handshake failed" })),
			[]diagtest.Want{diagtest.W(pb.Status_WARN, "ProbeService did not answer: authentication handshake failed", "agent.tls")}},
		{"refused", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.Refused, Err: "connect: connection refused", LocalAddr: "10.1.0.5"}
		})),
			[]diagtest.Want{diagtest.W(pb.Status_WARN, "nothing listens on 192.168.10.17:7444", "the path works", "agent.port")}},
		{"timed out, agent alive in its log", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout", LocalAddr: "10.1.0.5"}
			fresh(a)
		})), []diagtest.Want{diagtest.W(pb.Status_FAIL, "TCP timed out", "between 10.1.0.5 and the ECI pod", "admit 10.1.0.5 on TCP 7444",
			"bgp.*", "cloud.vpc-onprem-routes", "cloud.security-groups", "round 7, 30s old: the agent runs, so the path is what is broken")}},
		{"timed out, log stale", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
			a.Log = agent.Log{Read: true, Round: round(7, time.Hour)}
		})), []diagtest.Want{diagtest.W(pb.Status_FAIL, "between this host and the ECI pod", "newest round 1h0m0s old, older than agent.maxAge 5m0s: the agent itself may be down")}},
		{"timed out, log unreadable", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
			a.Log = agent.Log{Read: true, Err: `pods "agent-1" is forbidden`}
		})), []diagtest.Want{diagtest.W(pb.Status_FAIL, `not read: pods "agent-1" is forbidden`)}},
		{"unreachable", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.Unreachable, Err: "connect: network is unreachable"}
		})),
			[]diagtest.Want{diagtest.W(pb.Status_FAIL, "no route to agent vnodediag/agent-1", "network is unreachable", "learned on-prem")}},
		{"dial error", snap(pod(func(a *agent.Agent) { a.Direct = agent.Direct{Outcome: agent.DialError, Err: "too many open files"} })),
			[]diagtest.Want{diagtest.W(pb.Status_ERROR, "could not dial", "too many open files")}},
		{"no pod IP", snap(pod(func(a *agent.Agent) {
			a.PodIP, a.Address = "", ""
			a.Direct = agent.Direct{Outcome: agent.NotDialled, Err: "the pod has no IP yet"}
		})), []diagtest.Want{diagtest.W(pb.Status_SKIP, "not dialled: the pod has no IP yet")}},
		{"direct off", func() *agent.Snapshot { s := snap(pod(nil)); s.Direct = false; return s }(),
			[]diagtest.Want{diagtest.W(pb.Status_SKIP, "agent.direct is false")}},
		{"no agents", snap(), []diagtest.Want{diagtest.W(pb.Status_SKIP, "no agent found", "vnode.agent")}},
		{"address agent", snap(&agent.Agent{Address: "192.168.10.17:7444", Direct: agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}}),
			[]diagtest.Want{diagtest.W(pb.Status_FAIL, "agent 192.168.10.17:7444 at 192.168.10.17:7444", "not read (agents found by address)")}},
		{"two agents", snap(pod(nil), pod(func(a *agent.Agent) {
			a.Pod, a.Node = "agent-2", "vnode-2"
			a.Direct = agent.Direct{Outcome: agent.TimedOut}
		})), []diagtest.Want{diagtest.W(pb.Status_PASS, "vnode-1"), diagtest.W(pb.Status_FAIL, "agent vnodediag/agent-2 on vnode-2")}},
	} {
		t.Run(tc.name, func(t *testing.T) { diagtest.Expect(t, evalOnPremToCloud(tc.s), tc.want...) })
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
		want []diagtest.Want
	}{
		{"connected", snap(withRound(round(3, 0, db(pb.ConnectResult_CONNECTED, "")), true)),
			[]diagtest.Want{diagtest.W(pb.Status_PASS, "connects to postgres (10.0.10.5:5432)", "via ProbeService.Run")}},
		{"refused", snap(withRound(round(3, time.Minute, db(pb.ConnectResult_REFUSED, "connection refused")), false)),
			[]diagtest.Want{diagtest.W(pb.Status_WARN, "the path from the cloud works", "nothing listens on 10.0.10.5:5432", "Not a network problem", "via pods/log")}},
		{"timed out", snap(withRound(round(3, time.Minute, db(pb.ConnectResult_TIMED_OUT, "i/o timeout")), false)),
			[]diagtest.Want{diagtest.W(pb.Status_FAIL, "TCP timed out", "ECI pod 192.168.10.17", "does not send 10.0.10.5 to the VBR", "cloud.vpc-onprem-routes")}},
		{"unreachable", snap(withRound(round(3, 0, db(pb.ConnectResult_UNREACHABLE, "connect: network is unreachable")), true)),
			[]diagtest.Want{diagtest.W(pb.Status_FAIL, "has no route to postgres", "network is unreachable", "VPC route table must send")}},
		{"error", snap(withRound(round(3, 0, db(pb.ConnectResult_ERROR, "not probed: context canceled")), true)),
			[]diagtest.Want{diagtest.W(pb.Status_ERROR, "could not probe", "context canceled")}},
		{"two targets", snap(withRound(round(3, 0, db(pb.ConnectResult_CONNECTED, ""), conn("kubelet", "10.0.1.11:10250", pb.ConnectResult_TIMED_OUT, "")), true)),
			[]diagtest.Want{diagtest.W(pb.Status_PASS), diagtest.W(pb.Status_FAIL, "kubelet (10.0.1.11:10250)")}},
		{"no targets", snap(withRound(round(3, 0), true)), []diagtest.Want{diagtest.W(pb.Status_SKIP, "its plan has no targets")}},
		{"stale log only", snap(withRound(round(3, 6*time.Minute, db(pb.ConnectResult_CONNECTED, "")), false)),
			[]diagtest.Want{diagtest.W(pb.Status_ERROR, "no fresh round", "via pods/log", "6m0s old, older than agent.maxAge 5m0s", "timed out")}},
		{"nothing", snap(pod(func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
			a.Log = agent.Log{Read: true, Err: "container not found"}
		})), []diagtest.Want{diagtest.W(pb.Status_ERROR, "neither path gave one", "failed: container not found", "timed out: i/o timeout")}},
		{"newest of both paths", snap(pod(func(a *agent.Agent) {
			a.Direct.Round = round(9, 0, db(pb.ConnectResult_CONNECTED, ""))
			a.Log = agent.Log{Read: true, Round: round(8, time.Minute, db(pb.ConnectResult_TIMED_OUT, ""))}
		})), []diagtest.Want{diagtest.W(pb.Status_PASS, "9 via ProbeService.Run")}},
		{"no agents", snap(), []diagtest.Want{diagtest.W(pb.Status_SKIP, "no agent found")}},
	} {
		t.Run(tc.name, func(t *testing.T) { diagtest.Expect(t, evalCloudToOnPrem(tc.s), tc.want...) })
	}
}

func TestREADME(t *testing.T) { diagtest.CheckREADME(t, "README.md", Checks()) }
