package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fatih/color"
	"github.com/miekg/dns"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/render"
	"github.com/vnodediag/vnodediag/diag/server"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

type diagnoseFlags struct {
	sourceFlags
	only, skip []string
	output     string
	failOn     string
	server     string
	timeout    time.Duration
	color      string
	progress   string
	verbose    bool
	fresh      bool
	remoteSecurityFlags
}

// remoteSecurityFlags secure the connection of --server.
type remoteSecurityFlags struct {
	serverCAFile   string
	clientCertFile string
	clientKeyFile  string
	serverName     string
	tokenFile      string
	insecure       bool
}

func (f *remoteSecurityFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.serverCAFile, "server-ca-file", "", "with --server: verify the daemon's TLS certificate with these PEM CAs (default: the system's roots); implies TLS")
	fl.StringVar(&f.clientCertFile, "client-cert-file", "", "with --server: PEM client certificate for a daemon that requires mTLS; implies TLS")
	fl.StringVar(&f.clientKeyFile, "client-key-file", "", "with --server: the PEM private key of --client-cert-file")
	fl.StringVar(&f.serverName, "server-name", "", "with --server: the name the daemon's certificate must carry (default: the --server host); implies TLS")
	fl.StringVar(&f.tokenFile, "token-file", "", "with --server: send the bearer token in this file")
	fl.BoolVar(&f.insecure, "insecure", false, "with --server: plaintext to a non-loopback daemon (served with --insecure-listen)")
}

// clientSecurity decides how the daemon at addr (--server) is dialled:
// TLS to any non-loopback daemon unless --insecure; plaintext to a loopback
// one unless a TLS flag is given. A token never crosses the network in
// clear.
func (f *remoteSecurityFlags) clientSecurity(addr string) (*server.ClientSecurity, error) {
	tlsFlags := f.serverCAFile != "" || f.clientCertFile != "" || f.clientKeyFile != "" || f.serverName != ""
	if addr == "" {
		if tlsFlags || f.tokenFile != "" || f.insecure {
			return nil, usageErr("--server-ca-file, --client-cert-file, --client-key-file, --server-name, --token-file and --insecure apply only with --server")
		}
		return nil, nil
	}
	if f.insecure && tlsFlags {
		return nil, usageErr("--insecure contradicts --server-ca-file, --client-cert-file, --client-key-file and --server-name: leave it out to use TLS")
	}
	if (f.clientCertFile == "") != (f.clientKeyFile == "") {
		return nil, usageErr("--client-cert-file and --client-key-file go together: give both")
	}
	loop := loopbackListen(addr)
	plaintext := f.insecure || loop && !tlsFlags
	if plaintext && !loop && f.tokenFile != "" {
		return nil, usageErr("--token-file with --insecure to the non-loopback %s: the token would cross the network in clear; serve the daemon with TLS", addr)
	}
	return &server.ClientSecurity{Plaintext: plaintext, CAFile: f.serverCAFile, CertFile: f.clientCertFile, KeyFile: f.clientKeyFile,
		ServerName: f.serverName, TokenFile: f.tokenFile}, nil
}

func newDiagnose() *cobra.Command {
	f := &diagnoseFlags{}
	cmd := &cobra.Command{
		Use:   "diagnose",
		Short: "Run the checks once and print the report",
		Long: `Run the checks once, in-process or on a daemon (--server), and print the report.

Exit codes: 0 nothing failed and nothing errored; 1 at least one FAIL (or WARN
with --fail-on=warn); 2 no FAIL but at least one ERROR (the diagnosis is
incomplete); 64 usage or configuration error; 69 daemon unreachable;
70 internal error (the run did not stop by its deadline, the daemon failed);
130 interrupted (Ctrl-C; the report shows what finished).`,
		Example: `  # everything the configuration enables, against the current kubeconfig context
  vnodediag diagnose --config vnodediag.yaml

  # only the Kubernetes checks, as JSON for a runbook
  vnodediag diagnose --only k8s -o json

  # another kubeconfig context, the pods of one namespace, as a read-only identity
  vnodediag diagnose --context prod-hybrid -n shop --as system:serviceaccount:vnodediag:vnodediag

  # ask a running daemon instead of running in-process
  vnodediag diagnose --server 127.0.0.1:7443 --skip dns.onprem-from-cloud

  # a daemon on the network: TLS, its CA, a client certificate (mTLS)
  vnodediag diagnose --server daemon.example:7443 --server-ca-file ca.crt \
    --client-cert-file client.crt --client-key-file client.key

  # fail the CI job on warnings too, JUnit for the CI system
  vnodediag diagnose --fail-on=warn -o junit > vnodediag.xml

  # one self-contained page with the path drawn, to attach to a ticket
  vnodediag diagnose --config vnodediag.yaml -o html > vnodediag.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDiagnose(cmd, f) },
	}
	f.sourceFlags.register(cmd)
	f.remoteSecurityFlags.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&f.only, "only", nil, "run only these check IDs or ID prefixes (comma-separated, e.g. k8s,bgp.session)")
	fl.StringSliceVar(&f.skip, "skip", nil, "leave out these check IDs or ID prefixes")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: "+strings.Join(render.Formats, ", "))
	fl.StringVar(&f.failOn, "fail-on", "fail", "lowest status that makes the exit code 1: fail or warn")
	fl.StringVar(&f.server, "server", "", "host:port of a vnodediag daemon to run the checks on")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "deadline of the whole run")
	fl.StringVar(&f.color, "color", "auto", "colour the table: auto (on a terminal), always, never")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "show evidence of passing results too")
	fl.BoolVar(&f.fresh, "fresh", false, "with --server: regather the sources instead of reading the daemon's warm state")
	fl.StringVar(&f.progress, "progress", "auto", "live progress of each source on stderr: auto (when stderr is a terminal), always, never")
	_ = cmd.RegisterFlagCompletionFunc("progress", cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(render.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("fail-on", cobra.FixedCompletions([]string{"fail", "warn"}, cobra.ShellCompDirectiveNoFileComp))
	ids := func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, c := range allChecks() {
			out = append(out, c.ID+"\t"+c.Title)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	_ = cmd.RegisterFlagCompletionFunc("only", ids)
	_ = cmd.RegisterFlagCompletionFunc("skip", ids)
	return cmd
}

// stopGrace is how long the run gets, after its deadline or an interrupt,
// to hand over what finished and have it rendered. The engine stops every
// source and check when the context ends; this is the backstop that keeps
// the promise (--timeout + 1 s, 1 s after Ctrl-C) even if something does
// not.
const stopGrace = 750 * time.Millisecond

func runDiagnose(cmd *cobra.Command, f *diagnoseFlags) error {
	if !slices.Contains(render.Formats, f.output) {
		return usageErr("-o %q: want one of %s", f.output, strings.Join(render.Formats, ", "))
	}
	if f.failOn != "fail" && f.failOn != "warn" {
		return usageErr("--fail-on %q: want fail or warn", f.failOn)
	}
	if f.color != "auto" && f.color != "always" && f.color != "never" {
		return usageErr("--color %q: want auto, always or never", f.color)
	}
	if f.progress != "auto" && f.progress != "always" && f.progress != "never" {
		return usageErr("--progress %q: want auto, always or never", f.progress)
	}
	if f.timeout <= 0 {
		return usageErr("--timeout %s: want a positive duration like 5m", f.timeout)
	}
	if err := f.checkDurations(cmd); err != nil {
		return err
	}
	if f.server != "" {
		if err := checkServerAddress(f.server); err != nil {
			return usageErr("--server %q: %v", f.server, err)
		}
		set := f.kubeFlagsSet(cmd)
		if f.configPath != "" {
			set = append([]string{"--config"}, set...)
		}
		if len(set) > 0 {
			return usageErr("--server runs on the daemon's configuration; %s cannot apply to it", strings.Join(set, ", "))
		}
	} else if f.fresh {
		return usageErr("--fresh applies to --server only: an in-process run always gathers")
	}
	if _, err := f.clientSecurity(f.server); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	opt := render.Options{Verbose: f.verbose, Width: 80}
	tty := false
	if fd, ok := out.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
		tty = true
		if w, _, err := term.GetSize(int(fd.Fd())); err == nil && w > 40 {
			opt.Width = w
		}
	}
	// auto colours a terminal unless NO_COLOR or TERM=dumb says not to
	// (fatih/color reads both); an explicit --color=always wins over them.
	opt.Color = f.color == "always" || f.color == "auto" && tty && !color.NoColor

	// The first SIGINT or SIGTERM ends the run's context: the engine
	// stops what is unfinished (ERROR "interrupted") and what finished is
	// rendered. A second one exits at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	// The live lines go to stderr and are erased before anything else is
	// written there or the report is written.
	// A daemon's run shows the same lines, from its DiagnoseStream.
	stopProgress := func() {}
	var progress func(diag.Progress)
	if errw := cmd.ErrOrStderr(); f.progress == "always" || f.progress == "auto" && isTerminal(errw) {
		progress, stopProgress = render.NewProgress(errw, terminalWidth(errw))
		ctx = diag.WithProgress(ctx, progress)
	}
	defer stopProgress()

	type outcome struct {
		rep *pb.Report
		out []byte
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		if f.server != "" {
			o.rep, o.err = diagnoseRemote(ctx, f, progress)
		} else {
			o.rep, o.err = diagnoseLocal(ctx, f)
		}
		if o.err == nil {
			var b bytes.Buffer
			if err := render.Write(&b, f.output, o.rep, opt); err != nil {
				o.err = &exitError{code: exitSoftware, err: err}
			}
			o.out = b.Bytes()
		}
		done <- o
	}()

	var interrupted os.Signal
	expired := ctx.Done()
	var backstop <-chan time.Time
	for {
		select {
		case o := <-done:
			stopProgress()
			if o.err != nil {
				if interrupted != nil && errors.Is(o.err, context.Canceled) {
					return &exitError{code: signalExit(interrupted), err: errors.New("interrupted")}
				}
				return o.err
			}
			if _, err := out.Write(o.out); err != nil {
				return &exitError{code: exitSoftware, err: fmt.Errorf("writing the report: %w", err)}
			}
			if interrupted != nil {
				return &exitError{code: signalExit(interrupted), err: errReported}
			}
			if code := diag.ExitCode(o.rep, f.failOn == "warn"); code != 0 {
				return &exitError{code: code, err: errReported}
			}
			return nil
		case sig := <-sigs:
			if interrupted != nil {
				return &exitError{code: signalExit(sig), err: errors.New("interrupted again; exiting without a report")}
			}
			interrupted = sig
			cancel()
			stopProgress()
			fmt.Fprintln(cmd.ErrOrStderr(), "vnodediag: interrupted; reporting what finished (interrupt again to exit at once)")
			if backstop == nil {
				backstop = time.After(stopGrace)
			}
		case <-expired:
			expired = nil
			if backstop == nil {
				backstop = time.After(stopGrace)
			}
		case <-backstop:
			stopProgress()
			if interrupted != nil {
				return &exitError{code: signalExit(interrupted), err: fmt.Errorf("interrupted, and the run did not stop within %s; exiting without a report", stopGrace)}
			}
			return &exitError{code: exitSoftware, err: fmt.Errorf("the run did not stop within %s of its deadline (--timeout %s); exiting without a report", stopGrace, f.timeout)}
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth is w's width in columns, 80 when it is not a terminal or
// does not say.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if n, _, err := term.GetSize(int(f.Fd())); err == nil && n > 0 {
			return n
		}
	}
	return 80
}

// signalExit is the shell's exit status for a process ended by sig.
func signalExit(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGINT)
}

// checkServerAddress accepts host:port with a port of 1-65535 and a host
// that is an IP address or a DNS name, so that a typo is a usage error
// before anything is dialled (gRPC would read "junk:::" as a target and
// report it unreachable).
func checkServerAddress(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port, like 127.0.0.1:7443: %w", err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q is not 1-65535", port)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if host == "" {
		return errors.New("want host:port, like 127.0.0.1:7443: the host is missing")
	}
	if _, ok := dns.IsDomainName(host); !ok || strings.ContainsAny(host, "/@%\\ ") {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	return nil
}

func diagnoseLocal(ctx context.Context, f *diagnoseFlags) (*pb.Report, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, err
	}
	only := append(append([]string{}, cfg.Runner.Only...), f.only...)
	skip := append(append([]string{}, cfg.Runner.Skip...), f.skip...)
	sel, err := diag.Select(allChecks(), only, skip)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	r, err := runnerFor(cfg, false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Run(ctx, sel), nil
}

// diagnoseRemote runs the checks on the daemon through DiagnoseStream,
// handing each progress event to progress (nil: none), and falls back to
// Diagnose on a daemon that has no stream.
func diagnoseRemote(ctx context.Context, f *diagnoseFlags, progress func(diag.Progress)) (*pb.Report, error) {
	sec, err := f.clientSecurity(f.server)
	if err != nil {
		return nil, err
	}
	conn, err := dialDaemon(f.server, sec)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := pb.NewDiagnosticsServiceClient(conn)
	req := &pb.DiagnoseRequest{Only: f.only, Skip: f.skip, Fresh: f.fresh}
	rep, err := diagnoseStream(ctx, client, req, progress)
	if status.Code(err) == codes.Unimplemented {
		rep, err = client.Diagnose(ctx, req)
	}
	if err != nil {
		return nil, remoteError(f, err)
	}
	return rep, nil
}

// diagnoseStream reads a DiagnoseStream to its report.
func diagnoseStream(ctx context.Context, client pb.DiagnosticsServiceClient, req *pb.DiagnoseRequest, progress func(diag.Progress)) (*pb.Report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.DiagnoseStream(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return nil, status.Error(codes.Internal, "the stream ended without a report")
		}
		if err != nil {
			return nil, err
		}
		if rep := ev.GetReport(); rep != nil {
			return rep, nil
		}
		if p, ok := server.ProgressOf(ev); ok && progress != nil {
			progress(p)
		}
	}
}

// remoteError maps a failed call to the daemon to an exit code: the daemon
// refusing the request is a usage error, a daemon that cannot be reached
// (or does not answer in time) is 69, and a daemon that answered with a
// failure (a reply over the size limit, an internal error) is 70.
func remoteError(f *diagnoseFlags, err error) error {
	st := status.Convert(err)
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument:
		return usageErr("%s", msg)
	case codes.Canceled:
		return fmt.Errorf("daemon %s: %w", f.server, context.Canceled)
	case codes.DeadlineExceeded:
		return &exitError{code: exitUnavailable, err: fmt.Errorf("daemon %s did not answer within --timeout %s", f.server, f.timeout)}
	case codes.Unauthenticated, codes.PermissionDenied:
		return &exitError{code: exitUnavailable, err: fmt.Errorf("daemon %s refused the call: %s: %s (give --token-file, or --client-cert-file and --client-key-file)", f.server, st.Code(), msg)}
	case codes.Unavailable, codes.Unimplemented:
		return &exitError{code: exitUnavailable, err: fmt.Errorf("daemon %s unreachable: %s: %s", f.server, st.Code(), msg)}
	case codes.ResourceExhausted:
		if retry, ok := retryHint(st); ok {
			return &exitError{code: exitUnavailable, err: fmt.Errorf("daemon %s busy: %s (retry after %s)", f.server, msg, retry)}
		}
		return &exitError{code: exitSoftware, err: fmt.Errorf("daemon %s: the report is larger than the %d MiB a message may carry: %s", f.server, server.MaxMessageSize>>20, msg)}
	}
	return &exitError{code: exitSoftware, err: fmt.Errorf("daemon %s failed: %s: %s", f.server, st.Code(), msg)}
}

// retryHint is the RetryInfo the daemon puts on a refusal for load.
func retryHint(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}
