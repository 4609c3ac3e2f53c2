package host

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"net/netip"
	"strings"
)

// Facts is what the host source read on the node.
type Facts struct {
	Root                string
	Netns               string
	LeasedLineInterface string
	LeasedLineCIDRs     []netip.Prefix
	NodePortRange       [2]int

	// Sysctls holds the values read, by dotted name
	// (net.ipv4.conf.eth1.rp_filter); a name the kernel does not have
	// (tcp_tw_recycle since Linux 4.12) is in neither map.
	Sysctls      map[string]string
	SysctlErrors map[string]string
	// NetnsNote says why the net.* sysctls read may not be the node's,
	// empty when they are (or that cannot be told).
	NetnsNote string

	// EtcResolv is the node's /etc/resolv.conf.
	EtcResolv *ResolvConf
	// ResolvedUpstream is systemd-resolved's list of real upstream
	// servers (/run/systemd/resolve/resolv.conf), read when /etc/resolv.conf
	// points at its stub 127.0.0.53.
	ResolvedUpstream *ResolvConf
	// KubeletConfig is the kubelet config file found, and KubeletResolvConf
	// its resolvConf (the file pods with dnsPolicy Default get, CoreDNS's
	// among them); both empty without a kubelet config.
	KubeletConfig, KubeletResolvConf string
	// KubeletResolv is that file when it is not /etc/resolv.conf.
	KubeletResolv *ResolvConf

	Firewalld Firewalld
	UFW       UFW
}

// Describe is the source's one-line description in the report.
func (f *Facts) Describe() string {
	fw := "firewalld not running"
	if f.Firewalld.Running {
		fw = "firewalld running"
	}
	ufw := "ufw not enabled"
	if f.UFW.Enabled {
		ufw = "ufw enabled"
	}
	where := "hostRoot " + f.Root
	if f.Netns != "" {
		where += ", netns " + f.Netns
	}
	return fmt.Sprintf("%s: %d sysctls read, %s, %s", where, len(f.Sysctls), fw, ufw)
}

// The sysctls host.sysctls and host.conntrack read, by dotted name.
const (
	sysIPForward     = "net.ipv4.ip_forward"
	sysRPFilterAll   = "net.ipv4.conf.all.rp_filter"
	sysRPFilterDef   = "net.ipv4.conf.default.rp_filter"
	sysTWRecycle     = "net.ipv4.tcp_tw_recycle"
	sysPortRange     = "net.ipv4.ip_local_port_range"
	sysReservedPorts = "net.ipv4.ip_local_reserved_ports"
	sysCTCount       = "net.netfilter.nf_conntrack_count"
	sysCTMax         = "net.netfilter.nf_conntrack_max"
)

// rpFilter is the dotted name of iface's rp_filter.
func rpFilter(iface string) string { return "net.ipv4.conf." + iface + ".rp_filter" }

// PodResolvConf is the resolv.conf the kubelet gives pods with dnsPolicy
// Default (CoreDNS among them): its resolvConf when set and not
// /etc/resolv.conf, else /etc/resolv.conf.
func (f *Facts) PodResolvConf() *ResolvConf {
	if f.KubeletResolv != nil {
		return f.KubeletResolv
	}
	return f.EtcResolv
}

// ResolvConf is a parsed resolv.conf.
type ResolvConf struct {
	// Path is where the node has it (/etc/resolv.conf).
	Path        string
	Nameservers []string
	Search      []string
	Options     []string
	// Err is why it could not be read, empty when it was.
	Err string
}

// parseResolvConf parses resolv.conf as the resolver and the kubelet do:
// the last search or domain line wins, comments start with # or ;.
func parseResolvConf(path, src string) *ResolvConf {
	rc := &ResolvConf{Path: path}
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				rc.Nameservers = append(rc.Nameservers, f[1])
			}
		case "search", "domain":
			rc.Search = append([]string(nil), f[1:]...)
		case "options":
			rc.Options = append(rc.Options, f[1:]...)
		}
	}
	return rc
}

// loopbackOnly reports whether every nameserver is a loopback address (a
// local stub such as systemd-resolved's 127.0.0.53, or dnsmasq on 127.0.0.1):
// in a pod that address is the pod itself.
func (rc *ResolvConf) loopbackOnly() bool {
	if len(rc.Nameservers) == 0 {
		return false
	}
	for _, ns := range rc.Nameservers {
		a, err := netip.ParseAddr(ns)
		if err != nil || !a.IsLoopback() {
			return false
		}
	}
	return true
}

// Firewalld is firewalld's state as its files show it.
type Firewalld struct {
	// Installed: its configuration or unit file exists.
	Installed bool
	// Running and why it is believed to be (the pid file's process, or a
	// process named firewalld).
	Running    bool
	RunningWhy string
	// Enabled: a systemd target wants it; Masked: its unit is /dev/null.
	Enabled, Masked bool
	EnabledWhy      string
	DefaultZone     string
	Zones           []Zone
}

// Zone is a firewalld zone as its XML file defines it.
type Zone struct {
	Name, File, Target string
	Interfaces         []string
	Sources            []string
	Services, Ports    []string
	Forward            bool
	Masquerade         bool
	RichRules          []RichRule
}

// RichRule is one firewalld rich rule, with the addresses it matches.
type RichRule struct {
	Text                string
	Source, Destination string
}

type zoneXML struct {
	XMLName    xml.Name `xml:"zone"`
	Target     string   `xml:"target,attr"`
	Interfaces []struct {
		Name string `xml:"name,attr"`
	} `xml:"interface"`
	Sources []struct {
		Address string `xml:"address,attr"`
		IPSet   string `xml:"ipset,attr"`
	} `xml:"source"`
	Services []struct {
		Name string `xml:"name,attr"`
	} `xml:"service"`
	Ports []struct {
		Protocol string `xml:"protocol,attr"`
		Port     string `xml:"port,attr"`
	} `xml:"port"`
	Forward    *struct{} `xml:"forward"`
	Masquerade *struct{} `xml:"masquerade"`
	Rules      []struct {
		Family string `xml:"family,attr"`
		Source *struct {
			Address string `xml:"address,attr"`
			Invert  string `xml:"invert,attr"`
		} `xml:"source"`
		Destination *struct {
			Address string `xml:"address,attr"`
		} `xml:"destination"`
		Accept *struct{} `xml:"accept"`
		Reject *struct{} `xml:"reject"`
		Drop   *struct{} `xml:"drop"`
	} `xml:"rule"`
}

// parseZone parses a firewalld zone file.
func parseZone(name, file string, src []byte) (Zone, error) {
	var zx zoneXML
	if err := xml.Unmarshal(src, &zx); err != nil {
		return Zone{}, fmt.Errorf("zone file %s: %w", file, err)
	}
	z := Zone{Name: name, File: file, Target: zx.Target, Forward: zx.Forward != nil, Masquerade: zx.Masquerade != nil}
	if z.Target == "" {
		z.Target = "default"
	}
	for _, i := range zx.Interfaces {
		z.Interfaces = append(z.Interfaces, i.Name)
	}
	for _, s := range zx.Sources {
		if s.Address != "" {
			z.Sources = append(z.Sources, s.Address)
		} else if s.IPSet != "" {
			z.Sources = append(z.Sources, "ipset:"+s.IPSet)
		}
	}
	for _, s := range zx.Services {
		z.Services = append(z.Services, s.Name)
	}
	for _, p := range zx.Ports {
		z.Ports = append(z.Ports, p.Port+"/"+p.Protocol)
	}
	for _, r := range zx.Rules {
		rr := RichRule{}
		parts := []string{"rule"}
		if r.Family != "" {
			parts = append(parts, "family="+r.Family)
		}
		if r.Source != nil {
			rr.Source = r.Source.Address
			not := ""
			if r.Source.Invert == "true" || r.Source.Invert == "yes" {
				not = "NOT "
			}
			parts = append(parts, "source "+not+"address="+r.Source.Address)
		}
		if r.Destination != nil {
			rr.Destination = r.Destination.Address
			parts = append(parts, "destination address="+r.Destination.Address)
		}
		switch {
		case r.Accept != nil:
			parts = append(parts, "accept")
		case r.Reject != nil:
			parts = append(parts, "reject")
		case r.Drop != nil:
			parts = append(parts, "drop")
		}
		rr.Text = strings.Join(parts, " ")
		z.RichRules = append(z.RichRules, rr)
	}
	return z, nil
}

// UFW is ufw's state as its files show it.
type UFW struct {
	// Installed: /etc/ufw/ufw.conf exists. Enabled: it says ENABLED=yes,
	// which `ufw enable` writes and the boot-time ufw-init obeys.
	Installed, Enabled   bool
	DefaultInputPolicy   string
	DefaultForwardPolicy string
	Rules                []UFWRule
}

// UFWRule is one rule of ufw's user rules, from its "### tuple ###" line.
type UFWRule struct {
	Text     string
	Src, Dst string
}

// parseUFWRules reads the rule tuples of /etc/ufw/user.rules:
// "### tuple ### allow tcp 22 0.0.0.0/0 any 10.0.0.0/8 in".
func parseUFWRules(src string) []UFWRule {
	var out []UFWRule
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "### tuple ###")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		// action proto dport dst sport src [direction]
		if len(f) < 6 {
			continue
		}
		r := UFWRule{Dst: f[3], Src: f[5]}
		dir := "in"
		if len(f) > 6 {
			dir = f[6]
		}
		r.Text = fmt.Sprintf("%s %s from %s port %s to %s port %s proto %s", f[0], dir, f[5], f[4], f[3], f[2], f[1])
		out = append(out, r)
	}
	return out
}

// parseShellVars reads KEY=value lines (ufw.conf, /etc/default/ufw).
func parseShellVars(src string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out
}
