package dnsprobe

// The evaluations, for the external tests that drive them with what real
// resolvers answered.
var (
	EvalResolverReachable     = evalResolverReachable
	EvalPrivateZoneFromOnPrem = evalPrivateZoneFromOnPrem
	EvalOnPremFromCloud       = evalOnPremFromCloud
	EvalCoreDNSForward        = evalCoreDNSForward
	EvalClusterDomainOverlap  = evalClusterDomainOverlap
)

// Canonical is c as the source hands it to the checks.
func Canonical(c *Config) Config {
	n, err := c.settings()
	if err != nil {
		panic(err)
	}
	return *n
}
