//go:build !linux

package bgp

import (
	"context"

	"github.com/vnodediag/vnodediag/diag"
)

// Gather needs netlink; elsewhere the route checks SKIP.
func (r *routeSource) Gather(context.Context) (any, error) {
	return nil, diag.NotConfigured("host route lookups need Linux (netlink)")
}
