package bgp

import (
	"fmt"
	"net/netip"

	"github.com/vnodediag/vnodediag/diag"
)

// RouteOption tunes the routes source.
type RouteOption func(*routeSource)

// WithNetns makes the source read the routing table of the network
// namespace at path (e.g. /var/run/netns/NAME) instead of its own.
func WithNetns(path string) RouteOption { return func(r *routeSource) { r.netns = path } }

type routeSource struct {
	gateway netip.Addr
	iface   string
	probes  []netip.Addr
	netns   string
}

// NewRouteProvider returns the routes source (diag.SourceRoutes). A nil cfg
// gives a provider whose checks SKIP; so does a platform without netlink.
func NewRouteProvider(cfg *RoutingConfig, opts ...RouteOption) (diag.Provider, error) {
	if cfg == nil {
		return notConfigured{diag.SourceRoutes, "no routing section"}, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	r := &routeSource{iface: cfg.LeasedLineInterface}
	if cfg.LeasedLineGateway != "" {
		r.gateway = mustParseAddr(cfg.LeasedLineGateway)
	}
	probes := cfg.ProbeAddresses
	if len(probes) == 0 {
		probes = DefaultServiceAddresses
	}
	for _, p := range probes {
		r.probes = append(r.probes, mustParseAddr(p))
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

func (r *routeSource) Name() diag.SourceName { return diag.SourceRoutes }
