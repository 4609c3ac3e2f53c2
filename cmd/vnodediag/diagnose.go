package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/render"
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
	verbose    bool
}

func newDiagnose() *cobra.Command {
	f := &diagnoseFlags{}
	cmd := &cobra.Command{
		Use:   "diagnose",
		Short: "Run the checks once and print the report",
		Long: `Run the checks once, in-process or on a daemon (--server), and print the report.

Exit codes: 0 nothing failed and nothing errored; 1 at least one FAIL (or WARN
with --fail-on=warn); 2 no FAIL but at least one ERROR (the diagnosis is
incomplete); 64 usage or configuration error; 69 daemon unreachable.`,
		Example: `  # everything the configuration enables, against the current kubeconfig context
  vnodediag diagnose --config vnodediag.yaml

  # only the Kubernetes checks, as JSON for a runbook
  vnodediag diagnose --only k8s -o json

  # ask a running daemon instead of running in-process
  vnodediag diagnose --server 127.0.0.1:7443 --skip dns.onprem-from-cloud

  # fail the CI job on warnings too, JUnit for the CI system
  vnodediag diagnose --fail-on=warn -o junit > vnodediag.xml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDiagnose(cmd, f) },
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&f.only, "only", nil, "run only these check IDs or ID prefixes (comma-separated, e.g. k8s,bgp.session)")
	fl.StringSliceVar(&f.skip, "skip", nil, "leave out these check IDs or ID prefixes")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: "+strings.Join(render.Formats, ", "))
	fl.StringVar(&f.failOn, "fail-on", "fail", "lowest status that makes the exit code 1: fail or warn")
	fl.StringVar(&f.server, "server", "", "host:port of a vnodediag daemon to run the checks on")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "deadline of the whole run")
	fl.StringVar(&f.color, "color", "auto", "colour the table: auto (on a terminal), always, never")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "show evidence of passing results too")
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
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	var rep *pb.Report
	var err error
	if f.server != "" {
		rep, err = diagnoseRemote(ctx, f)
	} else {
		rep, err = diagnoseLocal(ctx, f)
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	opt := render.Options{Verbose: f.verbose, Width: 80}
	if fd, ok := out.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
		opt.Color = f.color != "never"
		if w, _, err := term.GetSize(int(fd.Fd())); err == nil && w > 40 {
			opt.Width = w
		}
	} else {
		opt.Color = f.color == "always"
	}
	if err := render.Write(out, f.output, rep, opt); err != nil {
		return &exitError{code: exitSoftware, err: err}
	}
	if code := diag.ExitCode(rep, f.failOn == "warn"); code != 0 {
		return &exitError{code: code, err: errReported}
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
	r, err := runnerFor(cfg)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Run(ctx, sel), nil
}

func diagnoseRemote(ctx context.Context, f *diagnoseFlags) (*pb.Report, error) {
	if f.configPath != "" || f.kubeconfig != "" || f.kubeContext != "" {
		return nil, usageErr("--server runs on the daemon's configuration; --config, --kubeconfig and --context do not apply")
	}
	conn, err := grpc.NewClient(f.server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, usageErr("--server %q: %v", f.server, err)
	}
	defer conn.Close()
	rep, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(ctx, &pb.DiagnoseRequest{Only: f.only, Skip: f.skip})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			return nil, usageErr("%s", status.Convert(err).Message())
		}
		return nil, &exitError{code: exitUnavailable, err: fmt.Errorf("daemon %s: %w", f.server, err)}
	}
	return rep, nil
}
