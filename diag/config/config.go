// Package config reads the vnodediag configuration file: one YAML document,
// decoded strictly (unknown fields are errors, names are case-sensitive,
// errors name their line) and validated at load time. The file's top-level
// keys are the families' sections (diag.Section, each decoded into the
// family's own Config type) and `runner`, which tunes the engine. A section
// left out turns its checks into SKIP with the reason. The package knows no
// family: the composition root hands it the sections.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/vnodediag/vnodediag/diag"
)

// Config is the whole file.
type Config struct {
	Runner   RunnerConfig
	sections []*diag.Section
	values   map[string]diag.SectionConfig
}

// RunnerConfig is the `runner` section: it tunes the engine.
type RunnerConfig struct {
	// CheckTimeout bounds each check (default 30s).
	CheckTimeout diag.Duration `json:"checkTimeout,omitempty"`
	// SourceTimeout bounds gathering each source (default 60s).
	SourceTimeout diag.Duration `json:"sourceTimeout,omitempty"`
	// MaxResultsPerCheck caps the results of one check (default 200,
	// -1: no cap); the rest are summarised in one result.
	MaxResultsPerCheck int `json:"maxResultsPerCheck,omitempty"`
	// MaxReportBytes is the report's size budget (default 8 MiB, -1: none).
	MaxReportBytes int `json:"maxReportBytes,omitempty"`
	// Only and Skip select checks by ID or prefix, like the flags.
	Only []string `json:"only,omitempty"`
	Skip []string `json:"skip,omitempty"`
}

// Validate checks the runner section.
func (r *RunnerConfig) Validate() error {
	var errs []error
	if r.MaxResultsPerCheck < -1 {
		errs = append(errs, fmt.Errorf("maxResultsPerCheck: want a positive count or -1 (no cap), got %d", r.MaxResultsPerCheck))
	}
	if r.MaxReportBytes < -1 || (r.MaxReportBytes > 0 && r.MaxReportBytes < 64<<10) {
		errs = append(errs, fmt.Errorf("maxReportBytes: want at least 65536 or -1 (no budget), got %d", r.MaxReportBytes))
	}
	return errors.Join(errs...)
}

// New is a configuration with the given sections, none of them set.
func New(sections []*diag.Section) *Config {
	return &Config{sections: sections, values: map[string]diag.SectionConfig{}}
}

// Load reads and validates a config file.
func Load(path string, sections []*diag.Section) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b, sections)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes one YAML document strictly and validates it: field names
// match exactly, unknown fields and type errors name their line, and a
// file with no document or with two is an error.
func Parse(b []byte, sections []*diag.Section) (*Config, error) {
	c, err := Decode(b, sections)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode is Parse without the validation, for a caller that changes the
// configuration (flags over the file) before validating it.
func Decode(b []byte, sections []*diag.Section) (*Config, error) {
	// The file is decoded into a struct made for these sections, so that the
	// decoder treats the top level like any other level: exact names, lines,
	// duplicates, merge keys.
	fields := make([]reflect.StructField, 0, len(sections)+1)
	for i, s := range sections {
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("S%d", i),
			Type: reflect.TypeOf(s.New()),
			Tag:  reflect.StructTag(`json:"` + s.Key + `,omitempty"`),
		})
	}
	fields = append(fields, reflect.StructField{Name: "Runner", Type: reflect.TypeFor[RunnerConfig](), Tag: `json:"runner,omitempty"`})
	file := reflect.New(reflect.StructOf(fields))
	if err := decodeYAML(b, file.Interface()); err != nil {
		return nil, err
	}
	c := New(sections)
	v := file.Elem()
	for i, s := range sections {
		if f := v.Field(i); !f.IsNil() {
			c.values[s.Key] = f.Interface().(diag.SectionConfig)
		}
	}
	c.Runner = v.Field(len(sections)).Interface().(RunnerConfig)
	return c, nil
}

// Validate checks every section present and names the field that is wrong
// as "bgp: peers[1].asn: ...". Each section keeps its normalised settings.
func (c *Config) Validate() error {
	var errs []error
	for _, s := range c.sections {
		if v := c.values[s.Key]; v != nil {
			if err := v.Validate(); err != nil {
				errs = append(errs, prefixLines(s.Key, err))
			}
		}
	}
	if err := c.Runner.Validate(); err != nil {
		errs = append(errs, prefixLines("runner", err))
	}
	return errors.Join(errs...)
}

// Section returns the decoded value of the section key, nil when the file
// leaves it out.
func (c *Config) Section(key string) diag.SectionConfig { return c.values[key] }

// SetSection sets the value of section key (flags that make a section up).
func (c *Config) SetSection(key string, v diag.SectionConfig) { c.values[key] = v }

// Sections are the sections this configuration was read with.
func (c *Config) Sections() []*diag.Section { return c.sections }

// SectionAs returns section key as its family's type; nil when the file
// leaves it out.
func SectionAs[T diag.SectionConfig](c *Config, key string) T {
	v, _ := c.values[key].(T)
	return v
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

// MarshalJSON writes the file's document: each section set, under its key,
// and the runner section. A program that writes a configuration (the lab,
// a chart) gets the same fields the file has.
func (c *Config) MarshalJSON() ([]byte, error) {
	doc := map[string]any{"runner": c.Runner}
	for k, v := range c.values {
		doc[k] = v
	}
	return json.Marshal(doc)
}
