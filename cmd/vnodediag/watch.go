package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vnodediag/vnodediag/diag/render"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

type watchFlags struct {
	server  string
	only    []string
	current bool
	output  string
	remoteSecurityFlags
}

func newWatch() *cobra.Command {
	f := &watchFlags{}
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print the status changes of a daemon's periodic runs as they happen",
		Long: `Connect to a running daemon (vnodediag serve) and print every status
transition of its periodic runs: check, object, old -> new status, when.
With --current the present status of every watched check comes first.
Runs until interrupted (exit 0) or until the daemon goes away (exit 69).`,
		Example: `  vnodediag watch --server 127.0.0.1:7443
  vnodediag watch --server 127.0.0.1:7443 --only bgp,k8s.node-ready --current
  vnodediag watch --server 127.0.0.1:7443 -o json | jq .transition`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWatch(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "127.0.0.1:7443", "host:port of the vnodediag daemon")
	fl.StringSliceVar(&f.only, "only", nil, "watch only these check IDs or ID prefixes")
	fl.BoolVar(&f.current, "current", false, "print the current status of every watched check first")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text (a line per event) or json (a WatchEvent per line)")
	f.remoteSecurityFlags.register(cmd)
	return cmd
}

func runWatch(cmd *cobra.Command, f *watchFlags) error {
	if f.output != "text" && f.output != "json" {
		return usageErr("-o %q: want text or json", f.output)
	}
	if err := checkServerAddress(f.server); err != nil {
		return usageErr("--server %q: %v", f.server, err)
	}
	sec, err := f.clientSecurity(f.server)
	if err != nil {
		return err
	}
	conn, err := dialDaemon(f.server, sec)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer conn.Close()
	stream, err := pb.NewDiagnosticsServiceClient(conn).WatchReports(ctx, &pb.WatchReportsRequest{Only: f.only, Current: f.current})
	if err == nil {
		err = printWatch(cmd.OutOrStdout(), stream, f.output)
	}
	if ctx.Err() != nil {
		return nil
	}
	st := status.Convert(err)
	switch {
	case errors.Is(err, io.EOF):
		return &exitError{code: exitUnavailable, err: fmt.Errorf("daemon %s ended the watch", f.server)}
	case st.Code() == codes.InvalidArgument:
		return usageErr("%s", st.Message())
	case st.Code() == codes.ResourceExhausted:
		return &exitError{code: exitUnavailable, err: fmt.Errorf("daemon %s busy: %s", f.server, st.Message())}
	}
	return &exitError{code: exitUnavailable, err: fmt.Errorf("daemon %s: %s: %s", f.server, st.Code(), st.Message())}
}

// printWatch prints the stream's events until it ends.
func printWatch(w io.Writer, stream grpc.ServerStreamingClient[pb.WatchEvent], format string) error {
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		var line string
		if format == "json" {
			b, err := protojson.Marshal(ev)
			if err != nil {
				return err
			}
			line = string(render.EscapeJSONControls(b))
		} else {
			line = watchLine(ev)
			if line == "" {
				continue
			}
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
}

// watchLine is an event as a line of text, what the daemon said escaped.
func watchLine(ev *pb.WatchEvent) string {
	obj := func(o *pb.Object) string {
		if o == nil {
			return "-"
		}
		parts := []string{o.GetKind()}
		if o.GetNamespace() != "" {
			parts = append(parts, o.GetNamespace())
		}
		return strings.Join(append(parts, o.GetName()), "/")
	}
	st := func(s pb.Status) string {
		if s == pb.Status_STATUS_UNSPECIFIED {
			return "(none)"
		}
		return s.String()
	}
	switch e := ev.GetEvent().(type) {
	case *pb.WatchEvent_Transition:
		t := e.Transition
		return render.Escape(fmt.Sprintf("%s %s %s %s -> %s: %s", t.GetTime().AsTime().UTC().Format(time.RFC3339), t.GetCheckId(), obj(t.GetObject()),
			st(t.GetOldStatus()), st(t.GetNewStatus()), t.GetSummary()))
	case *pb.WatchEvent_Current:
		c := e.Current
		return render.Escape(fmt.Sprintf("%s %s %s %s (since %s): %s", "current", c.GetCheckId(), obj(c.GetObject()), st(c.GetStatus()),
			c.GetSince().AsTime().UTC().Format(time.RFC3339), c.GetSummary()))
	case *pb.WatchEvent_Dropped:
		return fmt.Sprintf("vnodediag: fell behind the daemon: %d events dropped", e.Dropped)
	case *pb.WatchEvent_Run:
		return ""
	}
	return ""
}
