package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"sigs.k8s.io/yaml"
)

// Bounds of what the source reads: files are small on a sane node, and a
// hostile or broken one costs at most this much.
const (
	maxFileBytes  = 1 << 20
	maxZoneFiles  = 256
	maxProcs      = 1 << 17
	maxLinkHops   = 40
	kubeletConfig = "/var/lib/kubelet/config.yaml"
)

// root reads the node's files under dir as the node sees them.
type root struct{ dir string }

// resolve is the path on this machine of the node's path p. Under a
// hostRoot, symlinks are followed as if dir were /: an absolute link
// (/etc/resolv.conf -> /run/systemd/resolve/resolv.conf) lands under dir,
// never on vnodediag's own files, and ".." stops at dir.
func (r root) resolve(p string) (string, error) {
	if r.dir == "/" {
		return path.Clean("/" + p), nil
	}
	cur := "/"
	rest := strings.Split(path.Clean("/"+p), "/")
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		fi, err := os.Lstat(filepath.Join(r.dir, next))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			// A missing component is reported by whoever opens the path.
			cur = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(r.dir, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(r.dir, cur), nil
}

// readFile reads the node's file p, at most maxFileBytes of it.
func (r root) readFile(p string) (string, error) {
	full, err := r.resolve(p)
	if err != nil {
		return "", err
	}
	f, err := os.Open(full)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes))
	return string(b), err
}

func (r root) exists(p string) bool {
	full, err := r.resolve(p)
	if err != nil {
		return false
	}
	_, err = os.Lstat(full)
	return err == nil
}

func (r root) readDir(p string) ([]fs.DirEntry, error) {
	full, err := r.resolve(p)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(full)
}

// Gather reads the node's facts. Files that do not exist are facts (no
// firewalld, no kubelet config); only a network namespace that cannot be
// entered fails the source, since every net.* sysctl would then be wrong.
func (p *provider) Gather(ctx context.Context) (any, error) {
	s := p.set
	f := &Facts{Root: s.root, Netns: s.netns, LeasedLineInterface: s.iface, LeasedLineCIDRs: s.cidrs, NodePortRange: s.nodePorts}
	r := root{dir: s.root}
	read := func() { f.Sysctls, f.SysctlErrors = readSysctls(r, sysctlNames(s.iface)) }
	if s.netns != "" {
		if err := inNetns(ctx, s.netns, read); err != nil {
			return nil, fmt.Errorf("host: netns %s: %w", s.netns, err)
		}
	} else {
		read()
		f.NetnsNote = netnsNote(r)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	readResolv(r, f)
	f.Firewalld = readFirewalld(ctx, r)
	f.UFW = readUFW(r)
	return f, nil
}

func sysctlNames(iface string) []string {
	names := []string{sysIPForward, sysRPFilterAll, sysRPFilterDef, sysTWRecycle, sysPortRange, sysReservedPorts, sysCTCount, sysCTMax}
	if iface != "" {
		names = append(names, rpFilter(iface))
	}
	return names
}

// SysctlPath is the /proc/sys file of a dotted sysctl name; an interface
// name inside net.ipv4.conf.<iface>.<key> may itself contain dots (eth0.100).
func SysctlPath(name string) string {
	if rest, ok := strings.CutPrefix(name, "net.ipv4.conf."); ok {
		if i := strings.LastIndexByte(rest, '.'); i > 0 {
			return "/proc/sys/net/ipv4/conf/" + rest[:i] + "/" + rest[i+1:]
		}
	}
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
}

func readSysctls(r root, names []string) (vals, errs map[string]string) {
	vals, errs = map[string]string{}, map[string]string{}
	for _, n := range names {
		v, err := r.readFile(SysctlPath(n))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			errs[n] = err.Error()
		default:
			vals[n] = strings.Join(strings.Fields(v), " ")
		}
	}
	return vals, errs
}

// netnsNote says when the net.* sysctls just read are not the node's:
// under a hostRoot, /proc/sys/net shows the reader's network namespace,
// not that of the node's pid 1.
func netnsNote(r root) string {
	if r.dir == "/" {
		return ""
	}
	own, err1 := os.Stat("/proc/thread-self/ns/net")
	node, err2 := os.Stat(filepath.Join(r.dir, "proc/1/ns/net"))
	if err1 != nil || err2 != nil {
		return ""
	}
	a, ok1 := own.Sys().(*syscall.Stat_t)
	b, ok2 := node.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || a.Ino == b.Ino && a.Dev == b.Dev {
		return ""
	}
	return fmt.Sprintf("vnodediag runs in another network namespace than the node's (%s/proc/1/ns/net), so the net.* sysctls read are its own: "+
		"run it with hostNetwork: true, or set host.netns: %s/proc/1/ns/net", r.dir, r.dir)
}

// readResolv reads /etc/resolv.conf, systemd-resolved's upstream list when
// /etc/resolv.conf points at its stub, and the file the kubelet gives pods.
func readResolv(r root, f *Facts) {
	read := func(p string) *ResolvConf {
		src, err := r.readFile(p)
		if err != nil {
			return &ResolvConf{Path: p, Err: err.Error()}
		}
		return parseResolvConf(p, src)
	}
	f.EtcResolv = read("/etc/resolv.conf")
	if f.EtcResolv.loopbackOnly() && r.exists("/run/systemd/resolve/resolv.conf") {
		f.ResolvedUpstream = read("/run/systemd/resolve/resolv.conf")
	}
	if src, err := r.readFile(kubeletConfig); err == nil {
		f.KubeletConfig = kubeletConfig
		var kc struct {
			ResolvConf *string `json:"resolvConf"`
		}
		// A config that does not parse is the kubelet's problem; its
		// default is what this one would say.
		_ = yaml.Unmarshal([]byte(src), &kc)
		f.KubeletResolvConf = "/etc/resolv.conf"
		if kc.ResolvConf != nil {
			f.KubeletResolvConf = *kc.ResolvConf
		}
		if p := f.KubeletResolvConf; p != "" && path.Clean(p) != "/etc/resolv.conf" {
			f.KubeletResolv = read(p)
		}
	}
}

func readFirewalld(ctx context.Context, r root) Firewalld {
	var fw Firewalld
	for _, p := range []string{"/etc/firewalld", "/usr/lib/firewalld", "/usr/lib/systemd/system/firewalld.service", "/lib/systemd/system/firewalld.service"} {
		if r.exists(p) {
			fw.Installed = true
		}
	}
	if link, err := os.Readlink(filepath.Join(r.dir, "etc/systemd/system/firewalld.service")); err == nil && link == "/dev/null" {
		fw.Masked = true
	}
	if wants, err := filepath.Glob(filepath.Join(r.dir, "etc/systemd/system/*.wants/firewalld.service")); err == nil && len(wants) > 0 {
		fw.Enabled = true
		rel, _ := filepath.Rel(r.dir, wants[0])
		fw.EnabledWhy = "/" + filepath.ToSlash(rel)
	}
	fw.Running, fw.RunningWhy = processRunning(ctx, r, "firewalld", "/run/firewalld.pid", "/var/run/firewalld.pid")
	if !fw.Installed && !fw.Running {
		return fw
	}
	fw.DefaultZone = "public"
	if src, err := r.readFile("/etc/firewalld/firewalld.conf"); err == nil {
		if z := parseShellVars(src)["DefaultZone"]; z != "" {
			fw.DefaultZone = z
		}
	}
	// A zone in /etc/firewalld/zones overrides the shipped one of that name.
	files := map[string]string{}
	for _, dir := range []string{"/usr/lib/firewalld/zones", "/etc/firewalld/zones"} {
		ents, _ := r.readDir(dir)
		for _, e := range ents {
			if name, ok := strings.CutSuffix(e.Name(), ".xml"); ok && len(files) < maxZoneFiles {
				files[name] = dir + "/" + e.Name()
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		src, err := r.readFile(files[n])
		if err != nil {
			continue
		}
		if z, err := parseZone(n, files[n], []byte(src)); err == nil {
			fw.Zones = append(fw.Zones, z)
		}
	}
	return fw
}

// processRunning tells whether a process named comm runs on the node: the
// one its pid file names, else any in the node's /proc (bounded).
func processRunning(ctx context.Context, r root, comm string, pidFiles ...string) (bool, string) {
	for _, pf := range pidFiles {
		src, err := r.readFile(pf)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(src))
		if err != nil || pid <= 0 {
			continue
		}
		if c, err := r.readFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(c) == comm {
			return true, fmt.Sprintf("process %d named in %s", pid, pf)
		}
	}
	ents, err := r.readDir("/proc")
	if err != nil {
		return false, ""
	}
	for i, e := range ents {
		if i >= maxProcs || ctx.Err() != nil {
			break
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if c, err := r.readFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(c) == comm {
			return true, fmt.Sprintf("process %d (%s)", pid, comm)
		}
	}
	return false, ""
}

func readUFW(r root) UFW {
	var u UFW
	src, err := r.readFile("/etc/ufw/ufw.conf")
	if err != nil {
		return u
	}
	u.Installed = true
	u.Enabled = strings.EqualFold(parseShellVars(src)["ENABLED"], "yes")
	if d, err := r.readFile("/etc/default/ufw"); err == nil {
		vars := parseShellVars(d)
		u.DefaultInputPolicy, u.DefaultForwardPolicy = vars["DEFAULT_INPUT_POLICY"], vars["DEFAULT_FORWARD_POLICY"]
	}
	for _, p := range []string{"/etc/ufw/user.rules", "/etc/ufw/user6.rules"} {
		if rules, err := r.readFile(p); err == nil {
			u.Rules = append(u.Rules, parseUFWRules(rules)...)
		}
	}
	return u
}
