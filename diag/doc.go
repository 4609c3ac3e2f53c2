// Package diag is the vnodediag engine: the Check value, the typed source
// keys (Key) and providers a run gathers once and shares, the Family a
// package registers, and the Runner that owns deadlines, concurrency, panic
// recovery, timing, ordering, result caps and selection policy.
//
// The engine imports no family. A family is one package per check-ID
// prefix (k8s.* in diag/k8s, vnode.* in diag/vnode, route.* in diag/route,
// bgp.* in bgp, dns.* in dnsprobe), with its source or using another's;
// the composition root (cmd/vnodediag/app) lists the families once.
//
// The shape of a family: `var Source = diag.NewKey[*T]("name")` beside the
// source's type; `func NewProvider(cfg *Config, env diag.Env)
// (diag.Provider, error)`, which returns Source.Unconfigured(reason) for a
// section left out; a Config whose Validate keeps normalised settings, so
// it is validated once; exported check-ID constants and `Checks()`;
// unexported, pure, table-tested evaluations; a README whose check table
// diagtest.CheckREADME keeps in step with Checks().
package diag
