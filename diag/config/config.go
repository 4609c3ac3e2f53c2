// Package config is the vnodediag configuration file: one YAML document,
// decoded strictly (unknown fields are errors), defaulted and validated at
// load time. Each section belongs to the package that uses it; a section
// left out turns its checks into SKIP with the reason.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

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

// Parse decodes one YAML document strictly and validates it.
func Parse(b []byte) (*Config, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("empty file")
	}
	c := &Config{}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return nil, cleanDecodeError(b, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks every section and names the field that is wrong.
func (c *Config) Validate() error {
	var errs []error
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

var unknownFieldRe = regexp.MustCompile(`unknown field "([^"]+)"`)

// cleanDecodeError strips the YAML-to-JSON layers from a decode error and
// adds the line of an unknown field, which the decoder does not report.
func cleanDecodeError(doc []byte, err error) error {
	msg := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	if m := unknownFieldRe.FindStringSubmatch(msg); m != nil {
		field := m[1][strings.LastIndex(m[1], ".")+1:]
		for i, line := range strings.Split(string(doc), "\n") {
			t := strings.TrimLeft(strings.TrimSpace(line), "- ")
			if strings.HasPrefix(t, field+":") {
				return fmt.Errorf("line %d: unknown field %q", i+1, m[1])
			}
		}
		return fmt.Errorf("unknown field %q", m[1])
	}
	return errors.New(msg)
}
