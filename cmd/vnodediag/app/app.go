// Package app is vnodediag's composition root: the one list of check
// families, the configuration file their sections make up, and the runner
// built from it. Registering a family is one line in Families; the engine
// (diag) and the families never import this package, nor each other's
// registration.
package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/cloud"
	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/diag/daemon"
	"github.com/vnodediag/vnodediag/diag/host"
	"github.com/vnodediag/vnodediag/diag/k8s"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/path"
	"github.com/vnodediag/vnodediag/diag/route"
	"github.com/vnodediag/vnodediag/diag/vnode"
	"github.com/vnodediag/vnodediag/dnsprobe"
)

// Families lists every family once: its checks, its section, its source.
// The order of the sections here is the order the file documents them in.
func Families() []diag.Family {
	return []diag.Family{
		kube.Family(),
		k8s.Family(),
		vnode.Family(),
		bgp.Family(),
		route.Family(),
		host.Family(),
		dnsprobe.Family(),
		agent.Family(),
		path.Family(),
		cloud.Family(),
		daemon.Family(),
	}
}

// Checks returns every check, sorted by ID.
func Checks() []diag.Check {
	all := diag.ChecksOf(Families())
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return all
}

// Sections are the sections of the configuration file, in Families order.
func Sections() []*diag.Section {
	var out []*diag.Section
	for _, f := range Families() {
		if f.Section != nil {
			out = append(out, f.Section)
		}
	}
	return out
}

// kubernetesSection is the key of the Kubernetes source's section, which
// flags and the default configuration fill in.
const kubernetesSection = "kubernetes"

// Overrides are the command-line flags that change the configuration.
// The Kubernetes ones are kubectl's flags of the same names.
type Overrides struct {
	Kubeconfig, Context         string
	Cluster, User, Namespace    string
	As                          string
	AsGroups                    []string
	RequestTimeout              time.Duration
	CheckTimeout, SourceTimeout time.Duration
}

// kube reports whether o sets anything of the Kubernetes section.
func (o Overrides) kube() bool {
	return o.Kubeconfig != "" || o.Context != "" || o.Cluster != "" || o.User != "" || o.Namespace != "" ||
		o.As != "" || len(o.AsGroups) > 0 || o.RequestTimeout != 0
}

// Load reads the configuration file at path (none: the defaults, that is
// the Kubernetes source by the standard kubeconfig rules and nothing
// else), applies the flags over it and validates the result once.
func Load(path string, o Overrides) (*config.Config, error) {
	cfg := config.New(Sections())
	if path == "" {
		cfg.SetSection(kubernetesSection, &kube.Config{})
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if cfg, err = config.Decode(b, Sections()); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if o.kube() {
		kc := config.SectionAs[*kube.Config](cfg, kubernetesSection)
		if kc == nil {
			kc = &kube.Config{}
			cfg.SetSection(kubernetesSection, kc)
		}
		for _, f := range []struct {
			to *string
			v  string
		}{
			{&kc.Kubeconfig, o.Kubeconfig}, {&kc.Context, o.Context}, {&kc.Cluster, o.Cluster},
			{&kc.User, o.User}, {&kc.Namespace, o.Namespace}, {&kc.As, o.As},
		} {
			if f.v != "" {
				*f.to = f.v
			}
		}
		if len(o.AsGroups) > 0 {
			kc.AsGroups = o.AsGroups
		}
		if o.RequestTimeout != 0 {
			kc.RequestTimeout = diag.Duration(o.RequestTimeout)
		}
	}
	if o.CheckTimeout > 0 {
		cfg.Runner.CheckTimeout = diag.Duration(o.CheckTimeout)
	}
	if o.SourceTimeout > 0 {
		cfg.Runner.SourceTimeout = diag.Duration(o.SourceTimeout)
	}
	if err := cfg.Validate(); err != nil {
		if path != "" {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		return nil, err
	}
	return cfg, nil
}

// NewRunner builds the provider of every section (an Unconfigured one for
// a section the file leaves out) and the runner over them. A provider that
// cannot be built (a kubeconfig that does not exist, a BGP listener that
// cannot bind under the daemon) is an error naming its section; providers
// already built are closed.
func NewRunner(cfg *config.Config, env diag.Env) (*diag.Runner, error) {
	r := &diag.Runner{
		CheckTimeout:       cfg.Runner.CheckTimeout.D(),
		SourceTimeout:      cfg.Runner.SourceTimeout.D(),
		MaxResultsPerCheck: cfg.Runner.MaxResultsPerCheck,
		MaxReportBytes:     cfg.Runner.MaxReportBytes,
		Identify:           kube.Identify,
	}
	var errs []error
	for _, s := range cfg.Sections() {
		p, err := s.Provider(cfg.Section(s.Key), env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.Providers = append(r.Providers, p)
	}
	if err := errors.Join(errs...); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Rebuild is NewRunner for a configuration that replaces old, whose runner
// is cur: the provider of a section that did not change is kept (a BGP
// session stays up, a cache stays warm), the others are built anew. built
// are the new providers (the caller closes them if it drops the result),
// replaced are cur's providers the new runner no longer holds (the caller
// closes them once the new runner is in use). On error nothing is kept
// and what was built is closed.
func Rebuild(old *config.Config, cur *diag.Runner, next *config.Config, env diag.Env) (r *diag.Runner, built, replaced []diag.Provider, err error) {
	r = &diag.Runner{
		CheckTimeout:       next.Runner.CheckTimeout.D(),
		SourceTimeout:      next.Runner.SourceTimeout.D(),
		MaxResultsPerCheck: next.Runner.MaxResultsPerCheck,
		MaxReportBytes:     next.Runner.MaxReportBytes,
		Identify:           kube.Identify,
	}
	if len(cur.Providers) != len(old.Sections()) {
		return nil, nil, nil, fmt.Errorf("rebuild: the running providers do not match the configuration's sections")
	}
	var errs []error
	for i, s := range next.Sections() {
		if sameSection(old.Section(s.Key), next.Section(s.Key)) {
			r.Providers = append(r.Providers, cur.Providers[i])
			continue
		}
		p, err := s.Provider(next.Section(s.Key), env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.Providers = append(r.Providers, p)
		built = append(built, p)
		replaced = append(replaced, cur.Providers[i])
	}
	if err := errors.Join(errs...); err != nil {
		(&diag.Runner{Providers: built}).Close()
		return nil, nil, nil, err
	}
	return r, built, replaced, nil
}

// sameSection reports whether two values of a section say the same.
func sameSection(a, b diag.SectionConfig) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
