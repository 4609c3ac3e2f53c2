//go:build !linux

package route

import (
	"context"
	"fmt"

	"github.com/vnodediag/vnodediag/diag"
)

// Gather needs netlink; elsewhere the route checks SKIP.
func (r *routeSource) Gather(context.Context) (any, error) {
	return nil, fmt.Errorf("host route lookups need Linux (netlink): %w", diag.ErrNotConfigured)
}
