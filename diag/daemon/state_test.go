package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/daemon"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// sinces is each state's since in the latest report, by check and object.
func sinces(t *testing.T, d *daemon.Daemon) map[string]time.Time {
	t.Helper()
	latest, err := d.Latest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, st := range latest.GetStates() {
		out[st.GetCheckId()+"/"+st.GetObject().GetName()] = st.GetSince().AsTime()
	}
	return out
}

// A state's since is when its check last changed status: it moves to the
// time of the transition when the status changes, and stays when a run
// finds the same status (for the check that changed, and for the one that
// never did).
func TestSinceMovesOnChange(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true}}
	d := newDaemon(t, l, daemon.Config{Interval: diag.Duration(time.Hour), Refresh: map[string]diag.Duration{"lamp": diag.Duration(time.Hour)}})
	waitFirstRun(t, d)
	ch := watch(t, d, nil, false)
	before := sinces(t, d)
	if before["lamp.lit/a"].IsZero() || before["lamp.count/"].IsZero() {
		t.Fatalf("states of the first run: %v", before)
	}

	l.set("a", false)
	if err := refresh(d); err != nil {
		t.Fatal(err)
	}
	d.RunNow()
	tr := waitRun(t, ch)
	if len(tr) != 1 || tr[0].GetObject().GetName() != "a" || tr[0].GetNewStatus() != pb.Status_FAIL {
		t.Fatalf("transitions %v", tr)
	}
	changed := sinces(t, d)
	if at := tr[0].GetTime().AsTime(); !changed["lamp.lit/a"].Equal(at) || !changed["lamp.lit/a"].After(before["lamp.lit/a"]) {
		t.Errorf("lamp a went dark at %s: its since is %s (was %s), want the transition's time", at, changed["lamp.lit/a"], before["lamp.lit/a"])
	}
	if !changed["lamp.count/"].Equal(before["lamp.count/"]) {
		t.Errorf("lamp.count did not change, but its since moved from %s to %s", before["lamp.count/"], changed["lamp.count/"])
	}

	d.RunNow()
	if tr := waitRun(t, ch); len(tr) != 0 {
		t.Fatalf("a run without change: %v", tr)
	}
	if again := sinces(t, d); !again["lamp.lit/a"].Equal(changed["lamp.lit/a"]) {
		t.Errorf("lamp a is still dark, but its since moved from %s to %s", changed["lamp.lit/a"], again["lamp.lit/a"])
	}
}

// runNow starts a periodic run and waits (at most 10 s) until it is the
// newest of the history.
func runNow(t *testing.T, d *daemon.Daemon) string {
	t.Helper()
	prev := d.History(1, false)[0].GetRunId()
	d.RunNow()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if id := d.History(1, false)[0].GetRunId(); id != prev {
			return id
		}
		if time.Now().After(deadline) {
			t.Fatal("RunNow: no new run within 10s")
		}
	}
}

func runIDs(reps []*pb.Report) []string {
	out := make([]string, len(reps))
	for i, r := range reps {
		out[i] = r.GetRunId()
	}
	return out
}

// historyWindow bounds the history by age as well as by count: a run
// older than the window is no longer listed (History, and so ListHistory),
// the newest excepted, and is dropped when the next is recorded, while
// runs within the window stay.
func TestHistoryWindow(t *testing.T) {
	const window = 2 * time.Second
	l := &lamp{state: map[string]bool{"a": true}}
	d := newDaemon(t, l, daemon.Config{Interval: diag.Duration(time.Hour), HistoryWindow: diag.Duration(window), HistorySize: 20})
	waitFirstRun(t, d)
	first := d.History(1, false)[0].GetRunId()
	second := runNow(t, d)
	if got := runIDs(d.History(0, false)); len(got) != 2 || got[0] != second || got[1] != first {
		t.Fatalf("history %v, want [%s %s]", got, second, first)
	}
	time.Sleep(window + 300*time.Millisecond)
	// Aged past the window before the next run: not listed, but the newest.
	if got := runIDs(d.History(0, false)); len(got) != 1 || got[0] != second {
		t.Errorf("history %v, want only the newest, %s", got, second)
	}
	third := runNow(t, d)
	if got := runIDs(d.History(0, false)); len(got) != 1 || got[0] != third {
		t.Errorf("history %v, want only the run within %s, %s", got, window, third)
	}
	fourth := runNow(t, d)
	if got := runIDs(d.History(0, true)); len(got) != 2 || got[0] != fourth || got[1] != third {
		t.Errorf("history %v, want [%s %s]", got, fourth, third)
	}
}

// An unconfigured interval is 60 s: the configuration in force says so,
// and so does the retry hint of a watch refused past maxWatchers (one
// interval, when the next run comes).
func TestDefaultInterval(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true}}
	d, err := daemon.New(daemon.Options{Config: daemon.Config{MaxWatchers: 1}, Checks: lampChecks(), Runner: &diag.Runner{Providers: []diag.Provider{l}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Stop(); d.Abort() }()
	if got := d.Config().Interval.D(); got != 60*time.Second || daemon.DefaultInterval != 60*time.Second {
		t.Errorf("interval %s (DefaultInterval %s), want 60s", got, daemon.DefaultInterval)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Watch(ctx, nil, false, func(*pb.WatchEvent) error { return nil }) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); d.Watchers() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("watcher did not register")
		}
	}
	err = d.Watch(context.Background(), nil, false, func(*pb.WatchEvent) error { return nil })
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "retry in 1m0s") {
		t.Fatalf("a watch past maxWatchers: %v", err)
	}
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() != 60*time.Second {
			t.Errorf("retry hint %s, want 60s", ri.GetRetryDelay().AsDuration())
		}
	}
}

// Why a source is NOT_SERVING is in the log: the line that says so names
// the source and the last failure's reason, and another says when it
// serves again. The reason's URL userinfo (a password) is never logged.
func TestNotServingLogged(t *testing.T) {
	secret := fmt.Sprintf("pw-%d", time.Now().UnixNano())
	cause := fmt.Sprintf(`Get "https://lamp-admin:%s@lamps.example:8443/api": dial tcp 192.0.2.1:8443: connect: connection refused`, secret)
	l := &lamp{state: map[string]bool{"a": true}, err: errors.New(cause)}
	var logs diagtest.SyncBuffer
	d := startDaemon(t, daemon.Options{Config: daemon.Config{Interval: diag.Duration(time.Hour), FailureThreshold: 2,
		Refresh: map[string]diag.Duration{"lamp": diag.Duration(time.Second)}},
		Checks: lampChecks(), Runner: &diag.Runner{Providers: []diag.Provider{l}}, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := d.Health().Check(context.Background(), &healthpb.HealthCheckRequest{Service: "vnodediag.source.lamp"})
			if err == nil && resp.GetStatus() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lamp health %v %v, want %s", resp, err, want)
			}
		}
	}
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	recs := diagtest.LogRecords(t, &logs, "source not serving")
	want := `Get "https://lamps.example:8443/api": dial tcp 192.0.2.1:8443: connect: connection refused`
	if len(recs) != 1 || recs[0]["source"] != "lamp" || recs[0]["reason"] != want || recs[0]["level"] != "ERROR" {
		t.Errorf(`"source not serving" lines %v, want one naming lamp and the reason %q:%s`, recs, want, logs.String())
	}
	if len(diagtest.LogRecords(t, &logs, "source serving again")) != 0 {
		t.Error("serving again before the lamp was fixed")
	}
	l.mu.Lock()
	l.err = nil
	l.mu.Unlock()
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	if recs := diagtest.LogRecords(t, &logs, "source serving again"); len(recs) != 1 || recs[0]["source"] != "lamp" {
		t.Errorf(`"source serving again" lines %v, want one naming lamp:%s`, recs, logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the password of the failure's URL is in the log:\n%s", logs.String())
	}
}

// A fresh run whose regather hangs past the caller's deadline still
// answers with a report, before that deadline: the regather is cut a
// little before it, and the checks run on what there is. Cut together,
// the caller got only DEADLINE_EXCEEDED.
func TestFreshAnswersBeforeDeadline(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true}}
	d := newDaemon(t, l, daemon.Config{Interval: diag.Duration(time.Hour)})
	waitFirstRun(t, d)
	gate := l.hold()
	defer close(gate)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rep, err := d.Diagnose(ctx, lampChecks(), true)
	if err != nil || rep == nil {
		t.Fatalf("fresh run with a hung source: %v, want a report", err)
	}
	if ctx.Err() != nil {
		t.Errorf("the report came after the caller's deadline")
	}
	if len(rep.GetResults()) == 0 {
		t.Errorf("a report without results: %v", rep)
	}
}
