package cloud

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"golang.org/x/time/rate"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
)

// Source is the cloud source's key: the snapshot of the cloud account a
// run read.
var Source = diag.NewKey[*Snapshot]("cloud")

// Family is the cloud.* checks and the `cloud` section.
func Family() diag.Family {
	return diag.Family{Name: "cloud", Checks: Checks, Section: diag.SectionOf("cloud", NewProvider).WithExample(Example)}
}

// NewProvider returns the cloud source. A nil cfg (no cloud section) gives
// a provider whose checks SKIP with the lines to add; an invalid cfg is an
// error now, before anything runs. Nothing is contacted until a gather.
//
// The source reads the Kubernetes snapshot of the same run (the nodes name
// the ECS instances, and the VPC is discovered from them), so it is a
// diag.Dependent of the kube source and lists no node itself.
func NewProvider(cfg *Config, env diag.Env) (diag.Provider, error) {
	if cfg == nil {
		return Source.Unconfigured(notConfigured), nil
	}
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	burst := 1
	if s.qps == rate.Inf {
		burst = 0
	}
	return &provider{
		s:       s,
		log:     env.Logger(),
		chain:   newCredentialChain(s.profile),
		limiter: rate.NewLimiter(s.qps, burst),
		base:    newTransport(s.requestTimeout),
	}, nil
}

type provider struct {
	s     *settings
	log   *slog.Logger
	chain *credentialChain
	// limiter is shared by every run of a daemon: the account's API budget
	// does not reset between runs.
	limiter *rate.Limiter
	base    *http.Transport
}

func (p *provider) Name() diag.SourceName { return Source.Name() }

// Uses is the Kubernetes source (the nodes name the instances to read,
// the eci-profile names ECI's groups and vSwitches) and, when the run has
// it, the DNS source (its configuration names the PrivateZone zones to
// look up). Both are gathered before any Dependent, so using them costs
// the cloud source no extra wait.
func (p *provider) Uses() []diag.SourceName { return diag.Needs(kube.Source, dnsprobe.Source) }

// Gather is only called outside a runner; the runner calls GatherFrom
// with the Kubernetes snapshot.
func (p *provider) Gather(ctx context.Context) (any, error) {
	return p.GatherFrom(ctx, diag.NewInputs())
}

// GatherFrom resolves the credential and reads one snapshot for the nodes
// of the run's Kubernetes snapshot. Only a missing credential or a missing
// Kubernetes snapshot fails the source; an API error fails the part of the
// snapshot it was reading.
func (p *provider) GatherFrom(ctx context.Context, in *diag.Inputs) (any, error) {
	if !kube.Source.Gathered(in) {
		// Every cloud check needs the kube source too and reports its
		// SKIP or ERROR; this says why the cloud source read nothing.
		return nil, fmt.Errorf("the Kubernetes source was not gathered in this run (no kubernetes section, or it failed: see its status), "+
			"and the cloud source reads the ECS instances the nodes name: %w", diag.ErrNotConfigured)
	}
	// Connections are reused within a run and closed after it: a daemon
	// runs every few minutes and need not hold them in between.
	defer p.base.CloseIdleConnections()
	cred, err := p.chain.resolve(ctx)
	if err != nil {
		return nil, err
	}
	api := newSDKAPI(p.s, cred.provider(), p.base)
	g := &gatherer{
		ecs: api, vpc: api, line: api, pvtz: api,
		s:    p.s,
		c:    newCaller(p.limiter, p.s.requestTimeout, cred, p.log),
		cred: cred,
	}
	if dnsprobe.Source.Gathered(in) {
		g.dns = &dnsprobe.Source.Get(in).Config
	}
	snap := g.run(ctx, kube.Source.Get(in))
	p.log.Debug("cloud source gathered", "region", snap.Region, "vpc", snap.VPCID, "calls", snap.Calls, "credential", snap.Credential, "failedParts", len(snap.Errors))
	return snap, nil
}

// Close releases idle connections.
func (p *provider) Close() { p.base.CloseIdleConnections() }

// Example is the `cloud` section of `vnodediag config example`: every field,
// commented.
const Example = `cloud:                              # the Alibaba Cloud API, read-only (Describe* only)
  regionId: cn-shanghai
  vpcId: vpc-uf6hybrid7demo01       # default: discovered from the ECS nodes' instances
  endpoints:                        # per product (ecs, vpc, pvtz): VPC endpoints, private clouds
    ecs: ecs-vpc.cn-shanghai.aliyuncs.com
    vpc: vpc-vpc.cn-shanghai.aliyuncs.com
  qps: 10                           # API requests per second of the source; -1: no limit
  requestTimeout: 10s               # each API request
  profile: prod                     # only this CLI profile instead of the default credential chain
  onPremCIDRs: [10.10.0.0/16]       # on-prem networks the VPC must route to the leased line
  routeEntryQuota: 200              # custom entries a route table may hold
  vbrIds: [vbr-uf6leasedline0001]   # default: the VBRs the VPC routes to or advertises through
  onPremASN: 65001                  # the AS of the VBRs' BGP peers; default: the bgp peers' ASNs
  requiredPorts: [tcp/10250, udp/53, icmp]   # security groups must admit from on-prem; default: all
  eciVSwitchIds: [vsw-uf6eci00000000001]     # default: vSwitchIds of kube-system/eci-profile
`
