// Package k8s holds the k8s.* checks: providerID format, podCIDR assignment,
// pod IPs inside their node's podCIDRs, and podCIDR overlaps. Each check
// gathers nothing itself: it evaluates the run's Kubernetes snapshot.
package k8s

import "github.com/vnodediag/vnodediag/diag"

// Checks returns the k8s.* checks.
func Checks() []diag.Check {
	return nil
}
