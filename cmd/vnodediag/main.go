// Command vnodediag finds, read-only and in one run, why a hybrid
// Kubernetes cluster and its Alibaba Cloud ECI virtual node cannot reach each
// other. `diagnose` runs the checks once and prints a report; `serve` is the
// long-running daemon with a gRPC API; `checks` prints the catalog.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/vnodediag/vnodediag/diag/render"
)

// Exit codes of vnodediag. 0/1/2 come from the report (diag.ExitCode).
const (
	exitUsage       = 64 // bad flags, bad config file, unknown check IDs, unusable kubeconfig
	exitUnavailable = 69 // the daemon given with --server cannot be reached
	exitSoftware    = 70 // an internal error
	// Interrupted runs exit 128 + the signal: 130 for SIGINT, 143 for SIGTERM.
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	g := &globalFlags{}
	root := newRoot(g)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	code := exitUsage // errors cobra found in flags and arguments
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err == nil || ee.code == 0 || errors.Is(ee.err, errReported) {
			return ee.code
		}
		code = ee.code
	}
	g.exitLine(os.Stderr, err, code)
	return code
}

// exitLine writes why vnodediag exits: a "vnodediag: ..." line, or under
// --log-format json a JSON record at level ERROR with the exit code, so
// that a log collector reading stderr line by line parses it like every
// other. Errors quote what came in (a config field, a daemon's reply),
// escaped for the terminal in either form.
func (g *globalFlags) exitLine(w io.Writer, err error, code int) {
	if g.jsonLog {
		recordLogger(w).Error(err.Error(), "exit_code", code)
		return
	}
	fmt.Fprintln(w, "vnodediag:", render.Escape(err.Error()))
}

// errReported marks an exit code whose reason is already in the report.
var errReported = errors.New("reported")

type globalFlags struct {
	logLevel  string
	logFormat string
	// jsonLog is set once --log-format json has been accepted.
	jsonLog bool
}

func newRoot(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:   "vnodediag",
		Short: "Read-only diagnostics for hybrid Kubernetes clusters bursting into Alibaba Cloud ECI",
		Long: `vnodediag finds why cloud (ECI virtual node, VPC) and on-prem cannot reach each
other: BGP route exchange, PrivateZone / on-prem DNS, 100.64.0.0/10 routing,
providerID and podCIDR consistency, DaemonSets on VNodes, metrics-server.
It never writes: Kubernetes get/list/watch only, and its BGP speaker
advertises nothing.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return setupLogging(g)
		},
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	root.AddCommand(newDiagnose(), newServe(), newChecks(), newVersion())
	root.AddCommand(newAgent(), newWatch(), newConfig())
	setDisplayName(root)
	return root
}

func setupLogging(g *globalFlags) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return usageErr("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch g.logFormat {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(jsonLogWriter{os.Stderr}, opts)
		g.jsonLog = true
	default:
		return usageErr("--log-format %q: want text or json", g.logFormat)
	}
	slog.SetDefault(slog.New(h))
	libraryLogs(h)
	return nil
}

// recordLogger writes JSON records to w whatever --log-level, escaped as
// every JSON log line is: for what vnodediag always says (where serve
// listens, why it exits) when the logs are JSON.
func recordLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(jsonLogWriter{w}, nil))
}

// jsonLogWriter escapes the DEL and C1 controls the JSON log handler
// leaves raw (it escapes C0 itself), so that a log line quoting a peer's
// message cannot drive the terminal. The text handler quotes them already.
type jsonLogWriter struct{ w io.Writer }

func (j jsonLogWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(render.EscapeJSONControls(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
