package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
)

// Defaults of the agent section.
const (
	DefaultNamespace     = "vnodediag"
	DefaultSelector      = "app.kubernetes.io/name=vnodediag-agent"
	DefaultContainer     = "agent"
	DefaultPort          = 7444
	DefaultMaxAge        = 5 * time.Minute
	DefaultDialTimeout   = 5 * time.Second
	DefaultRunTimeout    = 20 * time.Second
	DefaultLogTailLines  = 10
	DefaultLogLimitBytes = 4 << 20
	// maxAgents bounds what one run dials and reads.
	maxAgents = 256
)

// Config is the `agent` section: how vnodediag finds and reads the
// cloud-side agents. What the agents probe is their own plan (their
// ConfigMap), not vnodediag's.
type Config struct {
	// Namespace and Selector find the agent pods through the Kubernetes API
	// (default vnodediag and app.kubernetes.io/name=vnodediag-agent).
	Namespace string `json:"namespace,omitempty"`
	Selector  string `json:"selector,omitempty"`
	// Container is the agent's container in the pod (default agent).
	Container string `json:"container,omitempty"`
	// Addresses, when set, are the agents to dial (ip or ip:port) instead
	// of finding pods; there is then no log path.
	Addresses []string `json:"addresses,omitempty"`
	// Port of ProbeService on the pod IP (default 7444).
	Port int `json:"port,omitempty"`
	// Direct dials each agent over the data path (default true). With
	// false only logs are read and path.onprem-to-cloud SKIPs.
	Direct *bool `json:"direct,omitempty"`
	// TLS of ProbeService; without it the dial is plaintext.
	TLS *TLSConfig `json:"tls,omitempty"`
	// MaxAge is how old a round may be and still be used (default 5m;
	// longer than the agents' interval).
	MaxAge diag.Duration `json:"maxAge,omitempty"`
	// DialTimeout bounds the TCP connect and Info (default 5s); RunTimeout
	// a round asked over the direct path, and the log read (default 20s).
	DialTimeout diag.Duration `json:"dialTimeout,omitempty"`
	RunTimeout  diag.Duration `json:"runTimeout,omitempty"`
	// LogTailLines and LogLimitBytes bound what is read of an agent's log
	// (default the newest 10 lines, at most 4 MiB).
	LogTailLines  int `json:"logTailLines,omitempty"`
	LogLimitBytes int `json:"logLimitBytes,omitempty"`
	// Version the agents must run (default this vnodediag's version).
	Version string `json:"version,omitempty"`

	norm *settings
}

// TLSConfig is the client side of ProbeService's TLS.
type TLSConfig struct {
	// CAFile verifies the agents' certificates (default: system roots).
	CAFile string `json:"caFile,omitempty"`
	// CertFile and KeyFile are vnodediag's client certificate, for agents
	// that require mutual TLS.
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// ServerName to verify instead of the pod IP.
	ServerName string `json:"serverName,omitempty"`
}

// settings is the validated section with its defaults.
type settings struct {
	namespace, selector, container string
	// addresses are canonical ip:port; empty finds the agents as pods.
	addresses               []string
	port                    int
	direct                  bool
	tls                     *TLSConfig
	maxAge                  time.Duration
	dialTimeout, runTimeout time.Duration
	tailLines, limitBytes   int64
	version                 string
}

// Validate checks the section without touching the network, names each
// field that is wrong and keeps the settings the provider uses.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	s := &settings{
		namespace: or(c.Namespace, DefaultNamespace), selector: or(c.Selector, DefaultSelector),
		container: or(c.Container, DefaultContainer), port: DefaultPort, direct: c.Direct == nil || *c.Direct,
		tls: c.TLS, maxAge: orD(c.MaxAge, DefaultMaxAge), dialTimeout: orD(c.DialTimeout, DefaultDialTimeout),
		runTimeout: orD(c.RunTimeout, DefaultRunTimeout), tailLines: DefaultLogTailLines, limitBytes: DefaultLogLimitBytes,
		version: or(c.Version, diag.BuildVersion()),
	}
	if c.Namespace != "" {
		for _, m := range validation.IsDNS1123Label(c.Namespace) {
			add("namespace: %q: %s", c.Namespace, m)
		}
	}
	if c.Selector != "" {
		if _, err := labels.Parse(c.Selector); err != nil {
			add("selector: %q: %v", c.Selector, err)
		}
	}
	if c.Container != "" {
		for _, m := range validation.IsDNS1123Label(c.Container) {
			add("container: %q: %s", c.Container, m)
		}
	}
	switch {
	case c.Port < 0 || c.Port > 65535:
		add("port: %d is not 1-65535", c.Port)
	case c.Port > 0:
		s.port = c.Port
	}
	if len(c.Addresses) > 0 && (c.Namespace != "" || c.Selector != "") {
		add("addresses: set either addresses or namespace/selector, not both")
	}
	if len(c.Addresses) > maxAgents {
		add("addresses: at most %d, got %d", maxAgents, len(c.Addresses))
	}
	if len(c.Addresses) > 0 && !s.direct {
		add("direct: false leaves nothing to read from configured addresses")
	}
	seen := map[string]int{}
	for i, a := range c.Addresses {
		hp, err := agentAddr(a, s.port)
		switch k, dup := seen[hp]; {
		case err != nil:
			add("addresses[%d]: %v", i, err)
		case dup:
			add("addresses[%d]: %s is also addresses[%d]", i, hp, k)
		default:
			seen[hp] = i
			s.addresses = append(s.addresses, hp)
		}
	}
	if t := c.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		add("tls: certFile and keyFile go together")
	}
	if c.MaxAge != 0 && c.MaxAge.D() < time.Second {
		add("maxAge: %s is shorter than 1s", c.MaxAge.D())
	}
	switch {
	case c.LogTailLines < 0 || c.LogTailLines > 1000:
		add("logTailLines: want 1 to 1000, got %d", c.LogTailLines)
	case c.LogTailLines > 0:
		s.tailLines = int64(c.LogTailLines)
	}
	switch {
	case c.LogLimitBytes < 0 || c.LogLimitBytes > 64<<20:
		add("logLimitBytes: want 1 to %d, got %d", 64<<20, c.LogLimitBytes)
	case c.LogLimitBytes > 0:
		s.limitBytes = int64(c.LogLimitBytes)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.norm = s
	return nil
}

// settings returns the settings Validate kept, validating now if it has
// not run.
func (c *Config) settings() (*settings, error) {
	if c.norm == nil {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	return c.norm, nil
}

// agentAddr is ip or ip:port as a canonical ip:port (cloudnet.ParseAddr:
// one spelling per host, no zones).
func agentAddr(s string, port int) (string, error) {
	host := s
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("%q: port 0", s)
		}
		host, port = ap.Addr().String(), int(ap.Port())
	}
	a, err := cloudnet.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("%q is not ip or ip:port: %w", s, err)
	}
	return netip.AddrPortFrom(a, uint16(port)).String(), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orD(d diag.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}
