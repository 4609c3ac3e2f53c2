package route

import (
	"fmt"
	"net/netip"

	"github.com/vnodediag/vnodediag/diag"
)

type routeSource struct {
	gateway netip.Addr
	iface   string
	probes  []netip.Addr
	netns   string
}

// NewProvider returns the routes source. A nil cfg (no `routing` section)
// leaves it out; so does a platform without netlink.
func NewProvider(cfg *Config, _ diag.Env) (diag.Provider, error) {
	if cfg == nil {
		return Source.Unconfigured("no routing section in the configuration: add routing.leasedLineGateway or routing.leasedLineInterface"), nil
	}
	if cfg.norm == nil {
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("routing: %w", err)
		}
	}
	s := cfg.norm
	return &routeSource{gateway: s.gateway, iface: s.iface, probes: s.probes, netns: s.netns}, nil
}

func (r *routeSource) Name() diag.SourceName { return Source.Name() }
