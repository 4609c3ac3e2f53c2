// Package host is the host source and the host.* checks: the network
// sysctls, the conntrack table, firewalld and ufw, and resolv.conf of the
// node vnodediag runs on (the daemon's own on-prem node). The source only
// reads files: /proc/sys, /etc, /run, the kubelet's config, process names
// in /proc; nothing is written, no command is run, no D-Bus call is made.
//
// hostRoot points it at the node from a container (/host, where the node's
// /proc, /etc and /run are mounted read-only); symlinks under it are
// followed as the node would, so an absolute link in the node's /etc never
// lands on the container's own files. The net.* sysctls are per network
// namespace and /proc/sys/net shows the reading thread's: with netns set
// they are read on a thread that has entered that namespace.
package host

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Source is the host source's key.
var Source = diag.NewKey[*Facts]("host")

// The check IDs of this package (a public contract: runbooks match on them).
const (
	CheckSysctls    = "host.sysctls"
	CheckConntrack  = "host.conntrack"
	CheckFirewall   = "host.firewall"
	CheckResolvConf = "host.resolv-conf"
)

const (
	refHostFAQ   = "Alibaba Cloud ECI hybrid cluster FAQ: node kernel parameters (ip_forward=1, rp_filter 0 or 2 on the leased line, no tcp_tw_recycle), no firewalld or ufw on nodes"
	refConntrack = "Alibaba Cloud container network FAQ: nf_conntrack table full, packets dropped"
	refResolv    = "Alibaba Cloud ECI hybrid cluster FAQ: CoreDNS forward configuration and the node's resolvers"
)

// Family is the host.* checks and the `host` section.
func Family() diag.Family {
	return diag.Family{Name: "host", Checks: Checks, Section: diag.SectionOf("host", NewProvider).WithExample(Example)}
}

// Checks returns the host.* checks.
func Checks() []diag.Check {
	hostOnly := diag.Needs(Source)
	return []diag.Check{
		{ID: CheckConntrack, Title: "The conntrack table has room", Needs: hostOnly, Reference: refConntrack,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result { return evalConntrack(Source.Get(in)) }},
		{ID: CheckFirewall, Title: "No firewalld or ufw on the node", Needs: hostOnly, Optional: diag.Needs(kube.Source), Reference: refHostFAQ,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
				var podCIDRs []netip.Prefix
				if kube.Source.Gathered(in) {
					for _, n := range kube.Source.Get(in).Nodes {
						podCIDRs = append(podCIDRs, kube.PodCIDRs(n)...)
					}
				}
				return evalFirewall(Source.Get(in), podCIDRs)
			}},
		{ID: CheckResolvConf, Title: "The node's resolv.conf gives pods usable resolvers", Needs: hostOnly, Reference: refResolv,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result { return evalResolvConf(Source.Get(in)) }},
		{ID: CheckSysctls, Title: "Network sysctls suit a node behind a leased line", Needs: hostOnly, Reference: refHostFAQ,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result { return evalSysctls(Source.Get(in)) }},
	}
}

// Config is the `host` section: where the node's files are, and what its
// network must allow.
type Config struct {
	// HostRoot is where the node's / is seen (default "/"): "/host" in a
	// pod that mounts the node's /proc, /etc and /run there read-only.
	HostRoot string `json:"hostRoot,omitempty"`
	// Netns is a network namespace file whose net.* sysctls to read
	// (/host/proc/1/ns/net for the node's from a pod without hostNetwork;
	// entering it needs CAP_SYS_ADMIN). Empty: vnodediag's own.
	Netns string `json:"netns,omitempty"`
	// LeasedLineInterface is the interface toward the leased line, whose
	// rp_filter must be 0 or 2.
	LeasedLineInterface string `json:"leasedLineInterface,omitempty"`
	// LeasedLineCIDRs are the networks behind the leased line (VPC and
	// vSwitch CIDRs); firewall rules touching them or the pod CIDRs are
	// reported. Default 100.64.0.0/10.
	LeasedLineCIDRs []string `json:"leasedLineCIDRs,omitempty"`
	// NodePortRange is the API server's --service-node-port-range (default
	// 30000-32767), which ip_local_port_range must not overlap.
	NodePortRange string `json:"nodePortRange,omitempty"`

	norm *settings
}

// settings is a validated Config with its defaults.
type settings struct {
	root, netns, iface string
	cidrs              []netip.Prefix
	nodePorts          [2]int
}

// Validate checks the section without touching the host and keeps the
// settings the provider uses.
func (c *Config) Validate() error {
	var errs []error
	s := &settings{root: c.HostRoot, netns: c.Netns, iface: c.LeasedLineInterface, nodePorts: [2]int{30000, 32767}}
	if s.root == "" {
		s.root = "/"
	}
	if !filepath.IsAbs(s.root) {
		errs = append(errs, fmt.Errorf("hostRoot: %q is not an absolute path", c.HostRoot))
	}
	s.root = filepath.Clean(s.root)
	if c.Netns != "" && !filepath.IsAbs(c.Netns) {
		errs = append(errs, fmt.Errorf("netns: %q is not an absolute path", c.Netns))
	}
	if i := c.LeasedLineInterface; i != "" && (len(i) > 15 || strings.ContainsAny(i, " /") || i == "." || i == ".." || i == "all" || i == "default") {
		errs = append(errs, fmt.Errorf("leasedLineInterface: %q is not an interface name", i))
	}
	for i, cidr := range c.LeasedLineCIDRs {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			errs = append(errs, fmt.Errorf("leasedLineCIDRs[%d]: %q is not a CIDR", i, cidr))
			continue
		}
		s.cidrs = append(s.cidrs, p.Masked())
	}
	if len(c.LeasedLineCIDRs) == 0 {
		s.cidrs = []netip.Prefix{cloudnet.CGNAT}
	}
	if c.NodePortRange != "" {
		lo, hi, ok := strings.Cut(c.NodePortRange, "-")
		a, errA := strconv.Atoi(strings.TrimSpace(lo))
		b, errB := strconv.Atoi(strings.TrimSpace(hi))
		if !ok || errA != nil || errB != nil || a < 1 || b > 65535 || a > b {
			errs = append(errs, fmt.Errorf("nodePortRange: %q is not a port range such as 30000-32767", c.NodePortRange))
		} else {
			s.nodePorts = [2]int{a, b}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.norm = s
	return nil
}

// NewProvider returns the host source; a nil cfg (no `host` section)
// leaves it out.
func NewProvider(cfg *Config, _ diag.Env) (diag.Provider, error) {
	if cfg == nil {
		return Source.Unconfigured("no host section in the configuration: add `host: {}` on the node to judge (hostRoot: /host from a pod that mounts the node's /proc, /etc and /run)"), nil
	}
	if cfg.norm == nil {
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
	}
	return &provider{set: cfg.norm}, nil
}

type provider struct{ set *settings }

func (p *provider) Name() diag.SourceName { return Source.Name() }

// Example is the `host` section of `vnodediag config example`: every field,
// commented.
const Example = `host:                               # this node's files, read-only, for host.* (diag/host/README.md)
  hostRoot: /host                   # default /: the node's /proc, /etc, /run, /var/lib/kubelet mounted here
  netns: /host/proc/1/ns/net        # optional: read net.* sysctls in this network namespace
  leasedLineInterface: eth1         # its rp_filter is judged
  leasedLineCIDRs: [192.168.0.0/16] # default 100.64.0.0/10: firewall rules touching them are named
  nodePortRange: 30000-32767
`
