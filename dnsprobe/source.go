package dnsprobe

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
)

// Provider is the DNS source: it sends every query the dns.* checks need,
// concurrently, and returns the outcomes as *Observations.
type Provider struct {
	cfg    *Config
	log    *slog.Logger
	prober *Prober
}

// Source is the DNS source's key: the outcome of every query of a run.
var Source = diag.NewKey[*Observations]("dns")

// Family is the dns.* checks and the `dns` section.
func Family() diag.Family {
	return diag.Family{Name: "dns", Checks: Checks, Section: diag.SectionOf("dns", NewProvider).WithExample(Example)}
}

// NewProvider returns the DNS source. A nil cfg (no `dns` section) leaves
// it out; an invalid cfg is an error now.
func NewProvider(cfg *Config, env diag.Env) (diag.Provider, error) {
	if cfg == nil {
		return Source.Unconfigured("no dns section in the configuration: add dns.onPremResolvers or dns.cloudResolvers and the names to resolve"), nil
	}
	c, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: c, log: env.Logger(), prober: &Prober{UDPSize: uint16(c.UDPSize), Retries: c.Retries}}, nil
}

// Name is the DNS source's name.
func (p *Provider) Name() diag.SourceName { return Source.Name() }

// Query is one question to one server, and why it is asked.
type Query struct {
	Server string // host:port
	Name   string // FQDN, lower case
	Type   uint16
}

func (q Query) String() string {
	return fmt.Sprintf("%s %s @%s", trimDot(q.Name), dns.TypeToString[q.Type], q.Server)
}

// Observations is the gathered DNS source: the configuration and the
// outcome of every query.
type Observations struct {
	Config   Config
	Outcomes map[Query]*Outcome
	// Timeout is the per-query deadline the run used.
	Timeout time.Duration
	// Wall is the time the whole gather took; Slowest the longest query.
	Wall    time.Duration
	Slowest time.Duration
}

// Describe is the source's line in the report.
func (o *Observations) Describe() string {
	servers := map[string]bool{}
	for q := range o.Outcomes {
		servers[q.Server] = true
	}
	return fmt.Sprintf("%d queries to %d servers in %s (slowest query %s, deadline %s)",
		len(o.Outcomes), len(servers), o.Wall.Round(time.Millisecond), o.Slowest.Round(time.Millisecond), o.Timeout)
}

// Get returns the outcome of a query, nil if it was not sent.
func (o *Observations) Get(server, name string, qtype uint16) *Outcome {
	return o.Outcomes[Query{Server: server, Name: corefile.CanonicalName(name), Type: qtype}]
}

// plan lists the queries the checks need, without duplicates: the SOA of each
// resolver's zone, each PrivateZone name through each on-prem resolver, each
// on-prem name through each cloud resolver (unless cloudReachable is false),
// and each name directly at its zone's forward targets, so that a silent
// forwarder can be told from a dead hop without a second round trip. c is
// canonical.
func (c *Config) plan() []Query {
	seen := map[Query]bool{}
	var out []Query
	add := func(server, name string, t uint16) {
		q := Query{Server: server, Name: name, Type: t}
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	cloud := c.CloudReachable != ReachNo
	soa := func(r Resolver, isCloud bool) {
		zone := c.zoneOfResolver(r, isCloud)
		add(r.Address, zone, dns.TypeSOA)
		for _, target := range c.forwardTargets(zone) {
			add(target, zone, dns.TypeSOA)
		}
	}
	for _, r := range c.OnPremResolvers {
		soa(r, false)
	}
	if cloud {
		for _, r := range c.CloudResolvers {
			soa(r, true)
		}
	}
	names := func(resolvers []Resolver, names []Name, zones []string) {
		for _, n := range names {
			t, _ := QType(n.Type)
			for _, r := range resolvers {
				add(r.Address, n.Name, t)
			}
			for _, target := range c.forwardTargets(ZoneOf(n.Name, zones)) {
				add(target, n.Name, t)
			}
		}
	}
	names(c.OnPremResolvers, c.PrivateZoneNames, c.PrivateZones)
	if cloud {
		names(c.CloudResolvers, c.OnPremNames, c.OnPremZones)
	}
	return out
}

// Gather sends the planned queries, at most Concurrency at once, each with
// its own deadline. Failed queries are outcomes, not errors.
func (p *Provider) Gather(ctx context.Context) (any, error) { return p.gather(ctx), nil }

func (p *Provider) gather(ctx context.Context) *Observations {
	start := time.Now()
	plan := p.cfg.plan()
	obs := &Observations{Config: *p.cfg, Outcomes: make(map[Query]*Outcome, len(plan)), Timeout: p.cfg.Timeout.D()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	answered := 0
	sem := make(chan struct{}, p.cfg.Concurrency)
	for _, q := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var o *Outcome
			select {
			case sem <- struct{}{}:
				qctx, cancel := context.WithTimeout(ctx, obs.Timeout)
				own, _ := qctx.Deadline()
				o = p.prober.Query(qctx, q.Server, q.Name, q.Type)
				cancel()
				<-sem
				// A query cut short by the run's end (an interrupt, or a
				// run deadline before the query's own), not by its own
				// deadline, says nothing about the server. The deadline is
				// compared, not ctx.Err(): the socket's deadline can fire a
				// moment before the context's timer does.
				runEnd, bounded := ctx.Deadline()
				if (o.Kind == Timeout || o.Kind == TruncatedTCPFailed) && (ctx.Err() != nil || (bounded && !runEnd.After(own))) {
					o.Kind, o.Err = Interrupted, "the run ended first"
					if err := ctx.Err(); err != nil {
						o.Err = err.Error()
					}
				}
			case <-ctx.Done():
				o = &Outcome{Server: q.Server, Name: q.Name, Type: dns.TypeToString[q.Type], Kind: Interrupted, Err: "not sent: " + ctx.Err().Error()}
			}
			p.log.Debug("dns query", "query", q.String(), "outcome", string(o.Kind), "rtt", o.RTT)
			mu.Lock()
			obs.Outcomes[q] = o
			obs.Slowest = max(obs.Slowest, o.RTT)
			if o.Kind.Responded() {
				answered++
			}
			done := int64(len(obs.Outcomes))
			msg := fmt.Sprintf("%d/%d queries, %d answered", done, len(plan), answered)
			mu.Unlock()
			diag.ReportProgress(ctx, diag.Progress{Kind: diag.SourceUpdate, Source: Source.Name(), Message: msg, Done: done, Total: int64(len(plan))})
		}()
	}
	wg.Wait()
	obs.Wall = time.Since(start)
	return obs
}

// resolverLabel is "name (address)"; r comes from a canonical Config.
func resolverLabel(r Resolver) string {
	return fmt.Sprintf("%s (%s)", r.Name, r.Address)
}

func joinTargets(ts []string) string {
	if len(ts) == 0 {
		return "none configured"
	}
	return strings.Join(ts, ", ")
}

// Example is the `dns` section of `vnodediag config example`: every field,
// commented.
const Example = `dns:
  # On-prem DNS servers. They must resolve the PrivateZone names, through a
  # conditional forwarder to the PrivateZone inbound endpoint.
  onPremResolvers:
    - name: dc1-ns1
      address: 10.0.0.53          # host or host:port, port 53 by default
    - name: dc1-ns2
      address: 10.0.0.54:53
  # Cloud resolvers: VPC DNS. They must resolve the on-prem names, through a
  # PrivateZone forwarding rule to the on-prem DNS servers.
  cloudResolvers:
    - name: vpc-dns-1
      address: 100.100.2.136
    - name: vpc-dns-2
      address: 100.100.2.138
  # true, false, or auto (default): whether this host can query the cloud
  # resolvers directly. With auto they are judged only if one of them answers.
  cloudReachable: auto
  privateZones: [svc.cloud.internal]
  onPremZones: [corp.example]
  # Resolved through every on-prem resolver; expect is the exact answer set.
  privateZoneNames:
    - name: api.svc.cloud.internal
      expect: [192.168.10.20]
    - name: _grpc._tcp.api.svc.cloud.internal
      type: SRV
  # Resolved through every cloud resolver.
  onPremNames:
    - name: db.corp.example
      type: A
      expect: [10.0.1.10]
  # Where each zone is forwarded: queried directly to name the broken hop,
  # and expected as the CoreDNS forward targets.
  forwarders:
    - zone: svc.cloud.internal
      targets: [10.1.0.10, 10.1.0.11]   # PrivateZone inbound endpoint IPs
    - zone: corp.example
      targets: [10.0.0.53, 10.0.0.54]   # on-prem DNS
  # clusterDomain: cluster.local      # only used without a CoreDNS ConfigMap
  timeout: 2s                         # per query, retries included
  retries: 1
  concurrency: 128
  udpSize: 1232
`
