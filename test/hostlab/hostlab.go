// Package hostlab makes a node for the host source to read: a tree of the
// files a node has (/etc/resolv.conf, systemd-resolved's upstream list, the
// kubelet's config, firewalld's and ufw's files and units, /proc entries
// for conntrack and a running daemon), to point host.hostRoot at; and real
// kernel sysctls set inside a netlab network namespace.
package hostlab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vnodediag/vnodediag/diag/host"
	"github.com/vnodediag/vnodediag/test/netlab"
)

// Node is what a tree holds. Zero fields leave their files out.
type Node struct {
	// Sysctls are written under proc/sys, by dotted name (a tree's
	// /proc/sys is plain files; the kernel's are set with SetSysctls).
	Sysctls map[string]string
	// ResolvConf is /etc/resolv.conf. With Stub, /etc/resolv.conf is an
	// absolute symlink to systemd-resolved's stub file holding ResolvConf,
	// and Upstream is /run/systemd/resolve/resolv.conf.
	ResolvConf string
	Stub       bool
	Upstream   string
	// KubeletConfig is /var/lib/kubelet/config.yaml.
	KubeletConfig string
	// Firewalld, when set, installs firewalld's files.
	Firewalld *Firewalld
	// UFW, when set, installs ufw's files.
	UFW *UFW
}

// Firewalld is firewalld's installed state.
type Firewalld struct {
	Running, Enabled bool
	DefaultZone      string
	// Zones are zone files by name, written to /etc/firewalld/zones.
	Zones map[string]string
}

// UFW is ufw's installed state.
type UFW struct {
	Enabled       bool
	ForwardPolicy string
	// Rules are the rule lines of /etc/ufw/user.rules.
	Rules []string
}

// firewalldPID is the pid the tree's firewalld runs as.
const firewalldPID = 812

// PublicZone is firewalld's shipped public zone.
const PublicZone = `<?xml version="1.0" encoding="utf-8"?>
<zone>
  <short>Public</short>
  <description>For use in public areas.</description>
  <service name="ssh"/>
  <service name="dhcpv6-client"/>
  <forward/>
</zone>
`

// Write writes n's files under dir (which it creates).
func Write(dir string, n Node) error {
	w := func(p, content string) error {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, []byte(content), 0o644)
	}
	link := func(p, target string) error {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.Symlink(target, full)
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for name, v := range n.Sysctls {
		add(w(host.SysctlPath(name), v+"\n"))
	}
	switch {
	case n.Stub:
		add(w("run/systemd/resolve/stub-resolv.conf", n.ResolvConf))
		add(link("etc/resolv.conf", "/run/systemd/resolve/stub-resolv.conf"))
		if n.Upstream != "" {
			add(w("run/systemd/resolve/resolv.conf", n.Upstream))
		}
	case n.ResolvConf != "":
		add(w("etc/resolv.conf", n.ResolvConf))
	}
	if n.KubeletConfig != "" {
		add(w("var/lib/kubelet/config.yaml", n.KubeletConfig))
	}
	if fw := n.Firewalld; fw != nil {
		add(w("usr/lib/systemd/system/firewalld.service", "[Unit]\nDescription=firewalld - dynamic firewall daemon\n[Service]\nExecStart=/usr/sbin/firewalld --nofork --nopid\n"))
		add(w("usr/lib/firewalld/zones/public.xml", PublicZone))
		zone := fw.DefaultZone
		if zone == "" {
			zone = "public"
		}
		add(w("etc/firewalld/firewalld.conf", "# firewalld config file\nDefaultZone="+zone+"\nFirewallBackend=nftables\n"))
		for name, x := range fw.Zones {
			add(w("etc/firewalld/zones/"+name+".xml", x))
		}
		if fw.Enabled {
			add(link("etc/systemd/system/multi-user.target.wants/firewalld.service", "/usr/lib/systemd/system/firewalld.service"))
		}
		if fw.Running {
			add(w(fmt.Sprintf("proc/%d/comm", firewalldPID), "firewalld\n"))
			add(w("run/firewalld.pid", fmt.Sprintf("%d\n", firewalldPID)))
			add(link("var/run", "../run"))
		}
	}
	if u := n.UFW; u != nil {
		enabled := "no"
		if u.Enabled {
			enabled = "yes"
		}
		add(w("etc/ufw/ufw.conf", "# /etc/ufw/ufw.conf\n#\n\n# Set to yes to start on boot.\nENABLED="+enabled+"\n\nLOGLEVEL=low\n"))
		policy := u.ForwardPolicy
		if policy == "" {
			policy = "DROP"
		}
		add(w("etc/default/ufw", "IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\nDEFAULT_FORWARD_POLICY=\""+policy+"\"\n"))
		add(w("etc/ufw/user.rules", "*filter\n:ufw-user-input - [0:0]\n\n### RULES ###\n\n"+strings.Join(u.Rules, "\n")+"\n\n### END RULES ###\nCOMMIT\n"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("hostlab: %v", errs)
	}
	return nil
}

// UFWRule is the "### tuple ###" line and rule of `ufw allow from src to
// dst port port proto tcp`, as ufw writes it in user.rules.
func UFWRule(action, src, dst, port string) string {
	return fmt.Sprintf("### tuple ### %s tcp %s %s any %s in\n-A ufw-user-input -p tcp --dport %s -s %s -d %s -j ACCEPT", action, port, dst, src, port, src, dst)
}

// SetSysctls sets kernel sysctls inside h's network namespace.
func SetSysctls(h *netlab.Host, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := h.Run("sysctl", "-q", "-w", kv[i]+"="+kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// DemoNode is the demo's node, with one fault per host check: ip_forward
// off, strict rp_filter on the leased line, a local port range over the
// NodePorts; a conntrack table 97 % full; a resolv.conf that is only
// systemd-resolved's stub with no upstream the kubelet uses; firewalld
// running with a zone that drops the VPC's traffic.
func DemoNode(leasedIface string) Node {
	return Node{
		Sysctls: map[string]string{
			"net.ipv4.ip_forward":                         "0",
			"net.ipv4.conf.all.rp_filter":                 "0",
			"net.ipv4.conf.default.rp_filter":             "0",
			"net.ipv4.conf." + leasedIface + ".rp_filter": "1",
			"net.ipv4.ip_local_port_range":                "20000\t60999",
			"net.ipv4.ip_local_reserved_ports":            "",
			"net.netfilter.nf_conntrack_count":            "254312",
			"net.netfilter.nf_conntrack_max":              "262144",
		},
		Stub:          true,
		ResolvConf:    "# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n",
		Upstream:      "nameserver 10.0.0.53\nnameserver 10.0.0.54\nsearch corp.example\n",
		KubeletConfig: "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nresolvConf: /etc/resolv.conf\nmaxPods: 110\n",
		Firewalld: &Firewalld{Running: true, Enabled: true, DefaultZone: "public", Zones: map[string]string{
			"drop": `<?xml version="1.0" encoding="utf-8"?>
<zone target="DROP">
  <short>Drop</short>
  <source address="192.168.0.0/16"/>
  <rule family="ipv4"><source address="100.64.0.0/10"/><reject/></rule>
</zone>
`}},
	}
}
