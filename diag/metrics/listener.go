package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// Endpoint is the metrics HTTP listener: /metrics, behind the
// exporter-toolkit web configuration when one is given (TLS, client
// certificates, basic auth with bcrypt hashes; the file is read again on
// every connection and request, so edits apply without a restart).
type Endpoint struct {
	lis       net.Listener
	srv       *http.Server
	webConfig string
	log       *slog.Logger
}

// Listen checks the web configuration file (empty: plain HTTP without
// authentication) and listens on addr. Nothing is served until Serve.
func Listen(addr, webConfig string, h http.Handler, log *slog.Logger) (*Endpoint, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := ValidateWebConfig(webConfig); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "vnodediag daemon: metrics at /metrics")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &Endpoint{lis: lis, srv: srv, webConfig: webConfig, log: log}, nil
}

// ValidateWebConfig loads the web configuration file as Serve will (its
// TLS files, its users); "" is no configuration and valid.
func ValidateWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		// YAML errors quote the values they could not decode; the file
		// holds password hashes, and a wrong file given here may hold
		// anything, so the quotes go.
		return fmt.Errorf("web config %s: %s", path, quoted.ReplaceAllString(err.Error(), "a value"))
	}
	return nil
}

var quoted = regexp.MustCompile("`[^`]*`")

// Addr is the address the endpoint listens on.
func (e *Endpoint) Addr() net.Addr { return e.lis.Addr() }

// Serve serves until Shutdown, then returns nil.
func (e *Endpoint) Serve() error {
	cfg := e.webConfig
	err := web.Serve(e.lis, e.srv, &web.FlagConfig{WebConfigFile: &cfg}, e.log)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for running scrapes until ctx ends,
// then closes what is left.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	err := e.srv.Shutdown(ctx)
	if err != nil {
		_ = e.srv.Close()
	}
	return err
}
