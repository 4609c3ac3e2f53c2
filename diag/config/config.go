// Package config is the vnodediag configuration file: one YAML document,
// decoded strictly (unknown fields are errors, names are case-sensitive,
// errors name their line), defaulted and validated at load time. Each section belongs to the package that uses it; a section
// left out turns its checks into SKIP with the reason.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
)

// Config is the whole file.
type Config struct {
	Kubernetes *kube.Config       `json:"kubernetes,omitempty"`
	BGP        *bgp.Config        `json:"bgp,omitempty"`
	Routing    *bgp.RoutingConfig `json:"routing,omitempty"`
	DNS        *dnsprobe.Config   `json:"dns,omitempty"`
	Runner     RunnerConfig       `json:"runner,omitempty"`
}

// RunnerConfig tunes the engine.
type RunnerConfig struct {
	// CheckTimeout bounds each check (default 30s).
	CheckTimeout Duration `json:"checkTimeout,omitempty"`
	// SourceTimeout bounds gathering each source (default 60s).
	SourceTimeout Duration `json:"sourceTimeout,omitempty"`
	// MaxResultsPerCheck caps the results of one check (default 200,
	// -1: no cap); the rest are summarised in one result.
	MaxResultsPerCheck int `json:"maxResultsPerCheck,omitempty"`
	// MaxReportBytes is the report's size budget (default 8 MiB, -1: none).
	MaxReportBytes int `json:"maxReportBytes,omitempty"`
	// Only and Skip select checks by ID or prefix, like the flags.
	Only []string `json:"only,omitempty"`
	Skip []string `json:"skip,omitempty"`
}

// Load reads and validates a config file. An empty path gives the defaults.
func Load(path string) (*Config, error) {
	if path == "" {
		return Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Default is the configuration without a file: the kubeconfig found by the
// standard rules, nothing else.
func Default() *Config {
	return &Config{Kubernetes: &kube.Config{}}
}

// Parse decodes one YAML document strictly and validates it: field names
// match exactly, unknown fields and type errors name their line, and a
// file with no document or with two is an error.
func Parse(b []byte) (*Config, error) {
	c := &Config{}
	if err := decodeYAML(b, c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks every section and names the field that is wrong.
func (c *Config) Validate() error {
	var errs []error
	if c.Runner.MaxResultsPerCheck < -1 {
		errs = append(errs, fmt.Errorf("runner: maxResultsPerCheck: want a positive count or -1 (no cap), got %d", c.Runner.MaxResultsPerCheck))
	}
	if c.Runner.MaxReportBytes < -1 || (c.Runner.MaxReportBytes > 0 && c.Runner.MaxReportBytes < 64<<10) {
		errs = append(errs, fmt.Errorf("runner: maxReportBytes: want at least 65536 or -1 (no budget), got %d", c.Runner.MaxReportBytes))
	}
	if c.Kubernetes != nil {
		if err := c.Kubernetes.Validate(); err != nil {
			errs = append(errs, prefixLines("kubernetes", err))
		}
	}
	if c.BGP != nil {
		if err := c.BGP.Validate(); err != nil {
			errs = append(errs, prefixLines("bgp", err))
		}
	}
	if c.Routing != nil {
		if err := c.Routing.Validate(); err != nil {
			errs = append(errs, prefixLines("routing", err))
		}
	}
	if c.DNS != nil {
		if err := c.DNS.Validate(); err != nil {
			errs = append(errs, prefixLines("dns", err))
		}
	}
	return errors.Join(errs...)
}

// prefixLines names the section on every line of a (joined) error, so each
// problem reads "bgp: peers[1].asn: ...".
func prefixLines(section string, err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = section + ": " + l
	}
	return errors.New(strings.Join(lines, "\n"))
}
