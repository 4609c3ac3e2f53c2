// Package cloud is the Alibaba Cloud source and its cloud.* checks.
//
// The source reads, read-only (Describe* actions only), one snapshot per
// run: the ECS instances the cluster's ECS nodes name, the cluster's VPC
// (configured or discovered from those instances), its vSwitches and its
// route tables with every entry; the region's VBRs with their route
// tables, BGP peers and advertised networks; the PrivateZone zones bound to
// the VPC, resolver endpoints and forwarding rules; the security groups of
// the nodes and of ECI. Calls go through narrow interfaces (one per
// product area) whose one implementation uses alibaba-cloud-sdk-go; each
// call has a deadline, lists are paged to the end, throttling is retried
// with backoff inside the deadline, a QPS limiter spreads the calls, and
// independent lists are read in parallel. A permission error fails only
// the part it was reading, so only the checks needing that part ERROR,
// naming the RAM action and the statement to add.
//
// The source is a diag.Dependent of the Kubernetes source (the nodes, the
// eci-profile ConfigMap) and of the DNS source (the PrivateZone zones to
// look up). Credentials come from the Alibaba Cloud default chain
// (environment, RRSA/OIDC, CLI profile, credentials file, ECS instance RAM
// role); the report names the kind used, never the key.
//
// The checks are pure evaluations of the snapshot, the Kubernetes snapshot
// and, when present, the BGP observer's table and the dns section:
// cloud.ecs-instances, cloud.vpc-pod-routes, cloud.vpc-onprem-routes,
// cloud.vbr-bgp, cloud.privatezone, cloud.security-groups and
// cloud.eci-vswitches (README.md).
package cloud
