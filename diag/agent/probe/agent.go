package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Identity is who the agent is, from the downward API.
type Identity struct {
	Namespace, Pod, Node, PodIP string
}

// IdentityFromEnv reads POD_NAMESPACE, POD_NAME, NODE_NAME and POD_IP, which
// the agent's Deployment sets from the downward API.
func IdentityFromEnv() Identity {
	return Identity{Namespace: os.Getenv("POD_NAMESPACE"), Pod: os.Getenv("POD_NAME"), Node: os.Getenv("NODE_NAME"), PodIP: os.Getenv("POD_IP")}
}

// Options of an agent process besides its configuration.
type Options struct {
	// Out receives one protojson line per round (stdout).
	Out io.Writer
	// Log is for the agent's own messages (stderr); nil discards them.
	Log *slog.Logger
	// Identity names the agent in its rounds and Info.
	Identity Identity
	// Prober runs the probes; nil uses the real network.
	Prober *Prober
}

// Agent runs rounds on an interval and serves ProbeService.
type Agent struct {
	plan     *pb.ProbePlan
	interval time.Duration
	info     *pb.AgentInfo
	prober   *Prober
	log      *slog.Logger

	outMu sync.Mutex
	out   io.Writer
	seq   atomic.Uint64
	// rpcSlot lets one Run call probe at a time, so callers cannot multiply
	// the agent's traffic.
	rpcSlot chan struct{}
}

// New checks cfg and returns an agent; nothing runs until Run or Serve.
func New(cfg *Config, opts Options) (*Agent, error) {
	plan, err := cfg.Plan()
	if err != nil {
		return nil, err
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Prober == nil {
		opts.Prober = NewProber()
	}
	a := &Agent{
		plan:     plan,
		interval: cfg.IntervalOrDefault(),
		prober:   opts.Prober,
		log:      opts.Log,
		out:      opts.Out,
		rpcSlot:  make(chan struct{}, 1),
	}
	id := opts.Identity
	a.info = &pb.AgentInfo{
		Version: diag.BuildVersion(), Namespace: id.Namespace, Pod: id.Pod, Node: id.Node, PodIp: id.PodIP,
		StartTime: timestamppb.Now(), Interval: durationpb.New(a.interval), Plan: plan,
	}
	return a, nil
}

// Info is the agent's identity and plan.
func (a *Agent) Info() *pb.AgentInfo { return proto.Clone(a.info).(*pb.AgentInfo) }

// Round runs one round of plan now.
func (a *Agent) Round(ctx context.Context, plan *pb.ProbePlan, trigger string) *pb.ProbeRound {
	r := a.prober.Round(ctx, plan)
	r.Sequence = a.seq.Add(1)
	r.Trigger = trigger
	r.Agent = a.Info()
	r.Agent.Plan = plan
	return r
}

// Run runs a round at once and then every interval, writing each as one
// line, until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	for {
		start := time.Now()
		r := a.Round(ctx, a.plan, "interval")
		if ctx.Err() != nil {
			return nil
		}
		if err := a.write(r); err != nil {
			// stdout is the one way out through the API server; without
			// it the agent is blind to vnodediag's log path, not broken.
			a.log.Error("write round", "err", err)
		}
		a.log.Info("round", "sequence", r.Sequence, "dns", len(r.Dns), "connects", len(r.Connects), "took", time.Since(start).Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(max(0, a.interval-time.Since(start))):
		}
	}
}

// RunOnce runs one round and writes it.
func (a *Agent) RunOnce(ctx context.Context) error {
	return a.write(a.Round(ctx, a.plan, "interval"))
}

// write emits one round as one protojson line in a single write, so that
// lines of concurrent writers never interleave.
func (a *Agent) write(r *pb.ProbeRound) error {
	b, err := protojson.MarshalOptions{}.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode round %d: %w", r.Sequence, err)
	}
	a.outMu.Lock()
	defer a.outMu.Unlock()
	_, err = a.out.Write(append(b, '\n'))
	return err
}

// Server returns a gRPC server with ProbeService; creds nil serves plain
// TCP.
func (a *Agent) Server(creds credentials.TransportCredentials) *grpc.Server {
	opts := []grpc.ServerOption{grpc.MaxConcurrentStreams(16), grpc.MaxRecvMsgSize(1 << 20), grpc.ConnectionTimeout(10 * time.Second)}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	pb.RegisterProbeServiceServer(s, &service{a: a})
	return s
}

type service struct {
	pb.UnimplementedProbeServiceServer
	a *Agent
}

func (s *service) Info(context.Context, *pb.ProbeInfoRequest) (*pb.AgentInfo, error) {
	return s.a.Info(), nil
}

func (s *service) Run(ctx context.Context, req *pb.ProbeRunRequest) (*pb.ProbeRound, error) {
	plan, err := Narrow(s.a.plan, req.GetPlan())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "plan: %v", err)
	}
	select {
	case s.a.rpcSlot <- struct{}{}:
		defer func() { <-s.a.rpcSlot }()
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return s.a.Round(ctx, plan, "rpc"), nil
}

// ServerTLS is the TLS of ProbeService: the agent's certificate and, when
// clientCA is set, mutual TLS that admits only clients it signed.
func ServerTLS(certFile, keyFile, clientCA string) (credentials.TransportCredentials, error) {
	if certFile == "" && keyFile == "" && clientCA == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: both a certificate and a key are needed")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA %s: no PEM certificate", clientCA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(c), nil
}

// Serve runs the agent's rounds and, when lis is not nil, ProbeService on
// lis, until ctx ends.
func (a *Agent) Serve(ctx context.Context, lis net.Listener, creds credentials.TransportCredentials) error {
	errc := make(chan error, 2)
	var gs *grpc.Server
	if lis != nil {
		gs = a.Server(creds)
		go func() { errc <- gs.Serve(lis) }()
		a.log.Info("serving ProbeService", "address", lis.Addr().String(), "tls", creds != nil)
	}
	go func() { errc <- a.Run(ctx) }()
	select {
	case err := <-errc:
		if gs != nil {
			gs.Stop()
		}
		if err != nil {
			return fmt.Errorf("probe service: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	if gs != nil {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			gs.Stop()
		}
	}
	return nil
}
