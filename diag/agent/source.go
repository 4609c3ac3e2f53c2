package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// listAgents lists the agent pods by label: the Kubernetes snapshot keeps
// pods compact, without labels, readiness or container statuses.
func listAgents(ctx context.Context, cs kubernetes.Interface, namespace, selector string) ([]corev1.Pod, error) {
	l, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector, Limit: maxAgents + 1})
	if err != nil {
		return nil, fmt.Errorf("list pods %s in namespace %s: %w", selector, namespace, err)
	}
	return l.Items, nil
}

// tailLog reads the newest lines of one container's log, never the whole
// log: the API server passes tailLines and limitBytes to the kubelet.
func tailLog(ctx context.Context, cs kubernetes.Interface, namespace, pod, container string, lines, limitBytes int64) ([]byte, error) {
	rc, err := cs.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: container, TailLines: &lines, LimitBytes: &limitBytes,
	}).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("log of pod %s/%s container %s: %w", namespace, pod, container, err)
	}
	defer rc.Close()
	// The server honours limitBytes; the reader bounds it here too.
	b, err := io.ReadAll(io.LimitReader(rc, limitBytes+1))
	if err != nil {
		return b, fmt.Errorf("log of pod %s/%s container %s: %w", namespace, pod, container, err)
	}
	return b, nil
}

type provider struct {
	s   *settings
	log *slog.Logger
	now func() time.Time
	tls *tls.Config
}

// NewProvider returns the agent source. A nil cfg (no `agent` section)
// leaves it out, with the lines to add; an invalid cfg is an error now.
// Finding the agents as pods reads the Kubernetes source's client, so the
// provider is a diag.Dependent on it; configured addresses need nothing
// else.
func NewProvider(cfg *Config, env diag.Env) (diag.Provider, error) {
	if cfg == nil {
		return Source.Unconfigured("no agent section in the configuration: deploy the cloud-side agent (deploy/agent) and add " +
			"`agent: {namespace: vnodediag}`, or list the agents under agent.addresses"), nil
	}
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	p := &provider{s: s, log: env.Logger(), now: time.Now}
	if s.tls != nil {
		if p.tls, err = clientTLS(s.tls); err != nil {
			return nil, fmt.Errorf("agent: tls: %w", err)
		}
	}
	return p, nil
}

func (p *provider) Name() diag.SourceName { return Source.Name() }

// Uses is the Kubernetes source when the agents are found as pods.
func (p *provider) Uses() []diag.SourceName {
	if len(p.s.addresses) > 0 {
		return nil
	}
	return diag.Needs(kube.Source)
}

// Gather is GatherFrom without other sources: enough for configured
// addresses.
func (p *provider) Gather(ctx context.Context) (any, error) { return p.GatherFrom(ctx, nil) }

// GatherFrom finds the agents and reads each both ways, all at once. A
// failed dial or log read is a finding of that agent; the source fails only
// when the agents cannot be listed.
func (p *provider) GatherFrom(ctx context.Context, in *diag.Inputs) (any, error) {
	if len(p.s.addresses) > 0 {
		return p.gatherAddresses(ctx), nil
	}
	if !kube.Source.Gathered(in) {
		return nil, errors.New("finding the agent pods needs the Kubernetes source, which this run has not gathered " +
			"(see its status; add the kubernetes section), or list the agents under agent.addresses")
	}
	return p.gatherPods(ctx, kube.Source.Get(in).API)
}

// gatherPods lists the agent pods and reads them.
func (p *provider) gatherPods(ctx context.Context, cs kubernetes.Interface) (*Snapshot, error) {
	s := p.s
	pods, err := listAgents(ctx, cs, s.namespace, s.selector)
	if err != nil {
		return nil, err
	}
	if len(pods) > maxAgents {
		return nil, fmt.Errorf("more than %d pods match %s in namespace %s: narrow agent.selector", maxAgents, s.selector, s.namespace)
	}
	agents := make([]*Agent, len(pods))
	for i := range pods {
		agents[i] = p.fromPod(&pods[i])
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].Pod < agents[j].Pod })
	return p.read(ctx, cs, agents), nil
}

// gatherAddresses reads the configured addresses.
func (p *provider) gatherAddresses(ctx context.Context) *Snapshot {
	agents := make([]*Agent, len(p.s.addresses))
	for i, a := range p.s.addresses {
		agents[i] = &Agent{Address: a}
	}
	return p.read(ctx, nil, agents)
}

// read dials every agent and, with cs, reads its log, all at once (at most
// 16 agents at a time).
func (p *provider) read(ctx context.Context, cs kubernetes.Interface, agents []*Agent) *Snapshot {
	s := p.s
	snap := &Snapshot{Agents: agents, Direct: s.direct, Port: s.port, MaxAge: s.maxAge, Version: s.version}
	if cs != nil {
		snap.FromPods, snap.Namespace, snap.Selector = true, s.namespace, s.selector
		snap.Discovery = fmt.Sprintf("pods %s in namespace %s", s.selector, s.namespace)
	} else {
		snap.Discovery = "configured addresses"
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				a.Direct = Direct{Outcome: NotDialled, Err: "not read: " + ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			var inner sync.WaitGroup
			inner.Go(func() { p.readDirect(ctx, a) })
			if cs != nil && a.Node != "" {
				p.readLog(ctx, cs, a)
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	snap.Now = p.now()
	return snap
}

func (p *provider) fromPod(pod *corev1.Pod) *Agent {
	a := &Agent{Namespace: pod.Namespace, Pod: pod.Name, Node: pod.Spec.NodeName, PodIP: pod.Status.PodIP, Phase: string(pod.Status.Phase)}
	if a.PodIP != "" {
		a.Address = net.JoinHostPort(a.PodIP, fmt.Sprint(p.s.port))
	}
	a.ReadyMessage = "no Ready condition"
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			a.Ready = c.Status == corev1.ConditionTrue
			a.ReadyMessage = "Ready=" + string(c.Status)
			if c.Reason != "" {
				a.ReadyMessage += " (" + c.Reason
				if c.Message != "" {
					a.ReadyMessage += ": " + c.Message
				}
				a.ReadyMessage += ")"
			}
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == p.s.container {
			a.Image = c.Image
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == p.s.container {
			a.Restarts = cs.RestartCount
		}
	}
	return a
}

// readDirect connects to the probe port (the finding), then asks Info and
// a fresh round over ProbeService.
func (p *provider) readDirect(ctx context.Context, a *Agent) {
	switch {
	case !p.s.direct:
		a.Direct = Direct{Outcome: NotDialled, Err: "agent.direct is false"}
		return
	case a.Address == "":
		a.Direct = Direct{Outcome: NotDialled, Err: "the pod has no IP yet"}
		return
	}
	dctx, cancel := context.WithTimeout(ctx, p.s.dialTimeout)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", a.Address)
	a.Direct.ConnectTime = time.Since(start)
	if err != nil {
		a.Direct.Outcome, a.Direct.Err = classifyDial(err), err.Error()
		a.Direct.LocalAddr = sourceAddr(a.Address)
		return
	}
	a.Direct.LocalAddr = hostOf(conn.LocalAddr().String())
	_ = conn.Close()
	a.Direct.Outcome = Connected

	creds := insecure.NewCredentials()
	if p.tls != nil {
		creds = credentials.NewTLS(p.tls.Clone())
	}
	cc, err := grpc.NewClient(a.Address, grpc.WithTransportCredentials(creds))
	if err != nil {
		a.Direct.InfoErr = err.Error()
		return
	}
	defer cc.Close()
	c := pb.NewProbeServiceClient(cc)
	ictx, icancel := context.WithTimeout(ctx, p.s.dialTimeout)
	info, err := c.Info(ictx, &pb.ProbeInfoRequest{})
	icancel()
	if err != nil {
		a.Direct.InfoErr = err.Error()
		return
	}
	a.Direct.Info = info
	rctx, rcancel := context.WithTimeout(ctx, p.s.runTimeout)
	r, err := c.Run(rctx, &pb.ProbeRunRequest{})
	rcancel()
	if err != nil {
		a.Direct.RoundErr = err.Error()
		return
	}
	a.Direct.Round = r
	p.log.Debug("agent read directly", "agent", a.Name(), "sequence", r.Sequence)
}

// sourceAddr is the local address the kernel picks toward addr: connecting
// a UDP socket only looks up the route, it sends nothing.
func sourceAddr(addr string) string {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	return hostOf(c.LocalAddr().String())
}

func hostOf(hp string) string {
	h, _, err := net.SplitHostPort(hp)
	if err != nil {
		return hp
	}
	return h
}

// classifyDial sorts a failed connect to the agent like the agent sorts its
// own connects.
func classifyDial(err error) DialOutcome {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return TimedOut
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return Unreachable
	}
	return DialError
}

// readLog reads the newest lines of the agent's log and keeps the newest
// line that is a round.
func (p *provider) readLog(ctx context.Context, cs kubernetes.Interface, a *Agent) {
	a.Log.Read = true
	ctx, cancel := context.WithTimeout(ctx, p.s.runTimeout)
	defer cancel()
	b, err := tailLog(ctx, cs, a.Namespace, a.Pod, p.s.container, p.s.tailLines, p.s.limitBytes)
	a.Log.Bytes = len(b)
	if err != nil {
		a.Log.Err = err.Error()
		return
	}
	r, lines, other := NewestRound(b)
	a.Log.Round, a.Log.Lines, a.Log.Other = r, lines, other
	if r == nil && int64(len(b)) >= p.s.limitBytes {
		a.Log.Err = fmt.Sprintf("the newest %d lines are larger than agent.logLimitBytes (%d): raise it or lower agent.logTailLines", p.s.tailLines, p.s.limitBytes)
	}
	if r != nil {
		p.log.Debug("agent read through its log", "agent", a.Name(), "sequence", r.Sequence, "bytes", len(b))
	}
}

// NewestRound returns the newest line of a log tail that is a round, the
// number of lines, and how many lines newer than it were something else (the
// agent's own messages share the log with its rounds).
func NewestRound(tail []byte) (r *pb.ProbeRound, lines, other int) {
	ls := bytes.Split(bytes.TrimRight(tail, "\n"), []byte("\n"))
	if len(ls) == 1 && len(ls[0]) == 0 {
		return nil, 0, 0
	}
	lines = len(ls)
	opts := protojson.UnmarshalOptions{DiscardUnknown: true}
	for i := len(ls) - 1; i >= 0; i-- {
		line := bytes.TrimSpace(ls[i])
		cand := &pb.ProbeRound{}
		if len(line) == 0 || line[0] != '{' || opts.Unmarshal(line, cand) != nil || !isRound(cand) {
			other++
			continue
		}
		return cand, lines, other
	}
	return nil, lines, other
}

// isRound tells a round from another JSON object that happens to parse
// (a JSON log line of the agent itself).
func isRound(r *pb.ProbeRound) bool {
	return r.Sequence > 0 && r.EndTime != nil && r.Agent != nil && r.Agent.Version != ""
}

func clientTLS(t *TLSConfig) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caFile %s: no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		kp, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certFile/keyFile: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}
