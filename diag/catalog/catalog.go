// Package catalog is the one explicit list of vnodediag checks. Check IDs
// are a public contract: runbooks match on them.
package catalog

import (
	"sort"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/k8s"
	"github.com/vnodediag/vnodediag/diag/vnode"
	"github.com/vnodediag/vnodediag/dnsprobe"
)

// All returns every check, sorted by ID.
func All() []diag.Check {
	var all []diag.Check
	for _, group := range [][]diag.Check{
		bgp.Checks(),
		k8s.Checks(),
		vnode.Checks(),
		dnsprobe.Checks(),
	} {
		all = append(all, group...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return all
}
