package probe

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Prober runs rounds. Its zero value is not usable; use NewProber.
type Prober struct {
	dns *dnsprobe.Prober
	// dial opens the TCP connections of the targets.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// network reads the pod's interfaces and routes.
	network  func(resolvConf string) *pb.NetworkFacts
	metadata *metadataReader
}

// NewProber returns a prober that uses the real network.
func NewProber() *Prober {
	var d net.Dialer
	return &Prober{
		dns:      &dnsprobe.Prober{},
		dial:     d.DialContext,
		network:  readNetwork,
		metadata: newMetadataReader(),
	}
}

// Round runs every probe of plan at most plan.Concurrency at a time, each
// under its own deadline, and returns the results in a stable order. It
// returns when the slowest probe has, or when ctx ends.
func (p *Prober) Round(ctx context.Context, plan *pb.ProbePlan) *pb.ProbeRound {
	r := &pb.ProbeRound{StartTime: timestamppb.Now()}
	facts := p.network(plan.ResolvConf)
	r.Network = facts

	conc := int(plan.Concurrency)
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	// run starts one probe once a slot is free; a probe that never got a
	// slot before ctx ended reports that instead of running.
	run := func(probe func(), skipped func(error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				probe()
			case <-ctx.Done():
				skipped(ctx.Err())
			}
		}()
	}

	r.Connects = make([]*pb.ConnectResult, len(plan.Targets))
	for i, t := range plan.Targets {
		run(func() { r.Connects[i] = p.connect(ctx, t, plan.ConnectTimeout.AsDuration()) },
			func(err error) {
				r.Connects[i] = &pb.ConnectResult{Name: t.Name, Address: t.Address, Outcome: pb.ConnectResult_ERROR, Error: "not probed: " + err.Error()}
			})
	}

	queries := dnsQueries(plan, facts.ResolvNameservers)
	r.Dns = make([]*pb.DNSResult, len(queries))
	for i, q := range queries {
		run(func() {
			qctx, cancel := context.WithTimeout(ctx, plan.DnsTimeout.AsDuration())
			o := p.dns.Query(qctx, q.server, q.name, q.qtype)
			cancel()
			r.Dns[i] = dnsResult(q, o)
		}, func(err error) {
			r.Dns[i] = &pb.DNSResult{Name: q.name, Type: dns.TypeToString[q.qtype], Server: q.server, Path: q.path,
				Outcome: string(dnsprobe.Interrupted), Error: "not sent: " + err.Error()}
		})
	}

	if plan.MetadataUrl != "" {
		// The metadata reads share the probes' slots: their own deadline
		// bounds them, and a missing MetaServer is a finding, not a failure.
		md := make(chan *pb.InstanceMetadata, 1)
		run(func() { md <- p.metadata.read(ctx, plan.MetadataUrl, plan.MetadataTimeout.AsDuration()) },
			func(err error) {
				md <- &pb.InstanceMetadata{Url: plan.MetadataUrl, Errors: []string{"not read: " + err.Error()}}
			})
		wg.Wait()
		r.Metadata = <-md
	} else {
		wg.Wait()
	}
	r.EndTime = timestamppb.Now()
	return r
}

// query is one planned DNS question.
type query struct {
	server string
	path   pb.ResolverPath
	name   string
	qtype  uint16
}

// dnsQueries lists, without duplicates, every name through every server of
// each path, and each zone's SOA through every server (so that a forwarder
// silent for one name can be told from a dead server).
func dnsQueries(plan *pb.ProbePlan, resolvConf []string) []query {
	type key struct {
		server string
		name   string
		qtype  uint16
	}
	seen := map[key]bool{}
	var out []query
	servers := []struct {
		path  pb.ResolverPath
		addrs []string
	}{
		{pb.ResolverPath_RESOLV_CONF, resolvConf},
		{pb.ResolverPath_VPC_DNS, plan.VpcResolvers},
		{pb.ResolverPath_ONPREM_DNS, plan.OnpremResolvers},
	}
	add := func(server string, path pb.ResolverPath, name string, t uint16) {
		k := key{server, name, t}
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, query{server: server, path: path, name: name, qtype: t})
	}
	for _, s := range servers {
		for _, server := range s.addrs {
			for _, z := range append(append([]string{}, plan.OnpremZones...), plan.PrivateZones...) {
				add(server, s.path, dns.Fqdn(z), dns.TypeSOA)
			}
			for _, n := range plan.Names {
				t, ok := dnsprobe.QType(n.Type)
				if !ok {
					continue
				}
				add(server, s.path, dns.Fqdn(n.Name), t)
			}
		}
	}
	return out
}

func dnsResult(q query, o *dnsprobe.Outcome) *pb.DNSResult {
	r := &pb.DNSResult{
		Name: o.Name, Type: o.Type, Server: q.server, Path: q.path, Outcome: string(o.Kind), Rcode: o.Rcode,
		Rtt: durationpb.New(o.RTT), Tcp: o.TCP, Attempts: int32(o.Attempts), Ignored: int32(o.Ignored), Error: o.Err,
	}
	for _, a := range o.Answers {
		r.Answers = append(r.Answers, &pb.DNSRecord{Name: a.Name, Type: a.Type, Ttl: a.TTL, Data: a.Data})
	}
	return r
}

// connect opens one TCP connection and closes it at once: nothing is sent.
func (p *Prober) connect(ctx context.Context, t *pb.ProbeTarget, timeout time.Duration) *pb.ConnectResult {
	res := &pb.ConnectResult{Name: t.Name, Address: t.Address}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	conn, err := p.dial(cctx, "tcp", t.Address)
	res.Rtt = durationpb.New(time.Since(start))
	if err == nil {
		res.Outcome = pb.ConnectResult_CONNECTED
		res.LocalAddress = conn.LocalAddr().String()
		_ = conn.Close()
		return res
	}
	res.Outcome, res.Error = classifyConnect(err), err.Error()
	return res
}

// classifyConnect sorts a failed connect: a RST (refused) proves the path
// works; silence (timed out) and an ICMP or local "no route" (unreachable)
// do not.
func classifyConnect(err error) pb.ConnectResult_Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return pb.ConnectResult_REFUSED
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return pb.ConnectResult_TIMED_OUT
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL):
		return pb.ConnectResult_UNREACHABLE
	}
	return pb.ConnectResult_ERROR
}
