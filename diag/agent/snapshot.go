package agent

import (
	"fmt"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Source is the agent source's key: checks read the run's snapshot with
// agent.Source.Get(in).
var Source = diag.NewKey[*Snapshot]("agent")

// Family is the agent source and its `agent` section; its checks live in
// the families they judge (vnode.agent, path.*, dns.onprem-from-cloud).
func Family() diag.Family {
	return diag.Family{Name: string(Source.Name()), Section: diag.SectionOf("agent", NewProvider).WithExample(Example)}
}

// Snapshot is what one run learned about the cloud-side agents.
type Snapshot struct {
	// Discovery says how agents were found: pods by label, or addresses.
	Discovery string
	// FromPods is set when agents were found as pods (so each has a node
	// and a log path).
	FromPods bool
	// Namespace and Selector of the pod discovery.
	Namespace, Selector string
	Agents              []*Agent
	// Direct says whether agents were dialled over the data path.
	Direct bool
	Port   int
	// MaxAge is how old a round may be and still be used.
	MaxAge time.Duration
	// Version is the version the agents must run.
	Version string
	// Now is when the source was read; ages are measured from it.
	Now time.Time
}

// Describe is the source's line in the report.
func (s *Snapshot) Describe() string {
	direct, logs := 0, 0
	for _, a := range s.Agents {
		if a.Direct.Outcome == Connected {
			direct++
		}
		if a.Log.Round != nil {
			logs++
		}
	}
	return fmt.Sprintf("%d agents (%s): %d answered directly, %d with a round in their log", len(s.Agents), s.Discovery, direct, logs)
}

// Agent is one agent pod or address.
type Agent struct {
	// Namespace, Pod and Node are empty for a configured address.
	Namespace, Pod, Node string
	PodIP                string
	// Phase, Ready and ReadyMessage come from the pod status.
	Phase        string
	Ready        bool
	ReadyMessage string
	Image        string
	Restarts     int32
	// Address is the ip:port dialled; empty when the pod has no IP yet.
	Address string
	Direct  Direct
	Log     Log
}

// Name is the agent for a report: namespace/pod, or its address.
func (a *Agent) Name() string {
	if a.Pod != "" {
		return a.Namespace + "/" + a.Pod
	}
	return a.Address
}

// Label names the agent and its VNode in a summary: "agent ns/pod on
// vnode-1", or "agent 10.0.0.5:7444".
func (a *Agent) Label() string {
	if a.Node != "" {
		return "agent " + a.Name() + " on " + a.Node
	}
	return "agent " + a.Name()
}

// Objects are the report objects of the agent: its pod (or address) and
// its node.
func (a *Agent) Objects() []*pb.Object {
	out := []*pb.Object{diag.Obj("Agent", "", a.Address)}
	if a.Pod != "" {
		out[0] = diag.Obj("Pod", a.Namespace, a.Pod)
	}
	if a.Node != "" {
		out = append(out, diag.Obj("Node", "", a.Node))
	}
	return out
}

// DirectState says what the direct path gave, for evidence.
func (a *Agent) DirectState() string {
	d := a.Direct
	switch {
	case d.Outcome == NotDialled:
		return "not dialled: " + d.Err
	case d.Outcome != Connected:
		return string(d.Outcome) + ": " + d.Err
	case d.InfoErr != "":
		return "connected, ProbeService.Info failed: " + d.InfoErr
	case d.RoundErr != "":
		return "connected, ProbeService.Run failed: " + d.RoundErr
	}
	return "connected, answered"
}

// LogState says what the log path gave, for evidence.
func (a *Agent) LogState() string {
	l := a.Log
	switch {
	case !l.Read:
		return "not read"
	case l.Err != "":
		return "failed: " + l.Err
	case l.Round == nil:
		return fmt.Sprintf("no round in the newest %d lines", l.Lines)
	}
	return fmt.Sprintf("round %d, ended %s, in %d bytes", l.Round.Sequence, l.Round.EndTime.AsTime().UTC().Format(time.RFC3339), l.Bytes)
}

// DialOutcome classifies the TCP connect to the agent's probe port.
type DialOutcome string

// The outcomes of the direct dial.
const (
	NotDialled DialOutcome = "not dialled"
	Connected  DialOutcome = "connected"
	// Refused: the host is reached, nothing listens on the port.
	Refused DialOutcome = "refused"
	// TimedOut: no answer; packets are dropped on the way (route, security
	// group, firewall).
	TimedOut DialOutcome = "timed out"
	// Unreachable: this host or a router said no route.
	Unreachable DialOutcome = "unreachable"
	DialError   DialOutcome = "error"
)

// Direct is what the data path gave.
type Direct struct {
	Outcome DialOutcome
	// Err is the dial error, or why the agent was not dialled.
	Err string
	// ConnectTime is the TCP handshake time.
	ConnectTime time.Duration
	// LocalAddr is the address this host sends from toward the agent (what
	// the ECI security group must admit); empty when it has no route.
	LocalAddr string
	// Info and Round are the ProbeService answers; their errors when the
	// connect worked but the call did not (TLS, version, deadline).
	Info     *pb.AgentInfo
	InfoErr  string
	Round    *pb.ProbeRound
	RoundErr string
}

// Log is what the agent's log gave through the API server.
type Log struct {
	// Read is set when the log was asked for.
	Read bool
	Err  string
	// Round is the newest round found in the tail.
	Round *pb.ProbeRound
	// Bytes and Lines read; Other counts lines that were not rounds.
	Bytes, Lines, Other int
}

// Latest is the newest round of the agent from either path, which path gave
// it, and its age at s.Now; nil when neither gave one.
func (s *Snapshot) Latest(a *Agent) (r *pb.ProbeRound, via string, age time.Duration) {
	for _, c := range []struct {
		r   *pb.ProbeRound
		via string
	}{{a.Direct.Round, "ProbeService.Run"}, {a.Log.Round, "pods/log"}} {
		if c.r == nil || c.r.EndTime == nil {
			continue
		}
		if r == nil || c.r.EndTime.AsTime().After(r.EndTime.AsTime()) {
			r, via = c.r, c.via
		}
	}
	if r == nil {
		return nil, "", 0
	}
	// A clock ahead of ours makes a negative age: fresh.
	return r, via, max(0, s.Now.Sub(r.EndTime.AsTime()))
}

// Fresh is the newest round of the agent when it is younger than MaxAge,
// else nil: stale results are reported, never used.
func (s *Snapshot) Fresh(a *Agent) (r *pb.ProbeRound, via string) {
	r, via, age := s.Latest(a)
	if r == nil || age > s.MaxAge {
		return nil, ""
	}
	return r, via
}

// AgentInfo is what the agent says about itself: from Info, else from its
// newest round.
func (a *Agent) AgentInfo() *pb.AgentInfo {
	if a.Direct.Info != nil {
		return a.Direct.Info
	}
	if a.Direct.Round != nil {
		return a.Direct.Round.Agent
	}
	if a.Log.Round != nil {
		return a.Log.Round.Agent
	}
	return nil
}

// Example is the `agent` section of `vnodediag config example`: every field,
// commented.
const Example = `agent:                              # the cloud-side agents (deploy/agent): see "The cloud-side agent"
  namespace: vnodediag              # default; the agent pods are found by label there
  selector: app.kubernetes.io/name=vnodediag-agent   # default
  # addresses: [192.168.10.17]      # instead: dial these agents (ip or ip:port); no log path then
  port: 7444                        # ProbeService on the pod IP
  direct: true                      # dial the pod IP over the leased line; false: logs only
  maxAge: 5m                        # older rounds are stale: reported, never used (> the agents' interval)
  dialTimeout: 5s                   # TCP connect and Info
  runTimeout: 20s                   # a round asked over ProbeService; the log read
  logTailLines: 10                  # what is read of an agent's log: the newest lines ...
  logLimitBytes: 4194304            # ... and at most this many bytes, never the whole log
  # tls: {caFile: ca.pem, certFile: client.pem, keyFile: client-key.pem, serverName: agent}
  # version: v1.2.3                 # the agents' expected version (default: this vnodediag's)
`
