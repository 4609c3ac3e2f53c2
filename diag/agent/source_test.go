package agent

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/config"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func TestConfigErrorsNameTheField(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"namespace", "namespace: Vnode_Diag\n", `namespace: "Vnode_Diag"`},
		{"selector", "selector: 'app in (x'\n", `selector: "app in (x"`},
		{"both", "namespace: vnodediag\naddresses: [10.0.0.1]\n", "addresses: set either addresses or namespace/selector, not both"},
		{"address", "addresses: [agent.example]\n", `addresses[0]: "agent.example" is not ip or ip:port`},
		{"port", "port: 70000\n", "port: 70000 is not 1-65535"},
		{"tls", "tls: {certFile: c.pem}\n", "tls: certFile and keyFile go together"},
		{"maxAge", "maxAge: 10ms\n", "maxAge: 10ms is shorter than 1s"},
		{"zero", "maxAge: 0s\n", `"0s" is not a positive duration`},
		{"zone", "addresses: ['fe80::1%eth0']\n", "zone-scoped"},
		{"duplicate", "addresses: [10.0.0.1, '10.0.0.1:7444']\n", "addresses[1]: 10.0.0.1:7444 is also addresses[0]"},
		{"tail", "logTailLines: 5000\n", "logTailLines: want 1 to 1000, got 5000"},
		{"unknown", "maxAgeSeconds: 300\n", `unknown field "maxAgeSeconds"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{}
			err := config.DecodeYAML([]byte(tc.doc), c)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if err := (&Config{Addresses: []string{"10.0.0.1"}, Direct: &no}).Validate(); err == nil || !strings.Contains(err.Error(), "direct: false leaves nothing") {
		t.Errorf("addresses without direct: %v", err)
	}
}

func TestSettingsDefaults(t *testing.T) {
	s, err := (&Config{}).settings()
	if err != nil {
		t.Fatal(err)
	}
	if s.namespace != "vnodediag" || s.selector != "app.kubernetes.io/name=vnodediag-agent" || s.container != "agent" || s.port != 7444 ||
		!s.direct || s.maxAge != 5*time.Minute || s.tailLines != 10 || s.limitBytes != 4<<20 || s.version != diag.BuildVersion() {
		t.Errorf("defaults %+v", s)
	}
	s, _ = (&Config{Addresses: []string{"10.0.0.1", "10.0.0.2:9000", "::ffff:10.0.0.3"}, Port: 7000, Version: "v1"}).settings()
	if strings.Join(s.addresses, ",") != "10.0.0.1:7000,10.0.0.2:9000,10.0.0.3:7000" || s.version != "v1" {
		t.Errorf("addresses %v", s.addresses)
	}
}

func TestNotConfiguredSaysWhatToAdd(t *testing.T) {
	p, err := NewProvider(nil, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Gather(context.Background())
	if !errors.Is(err, diag.ErrNotConfigured) || !strings.Contains(err.Error(), "`agent: {namespace: vnodediag}`") {
		t.Errorf("not configured: %v", err)
	}
	// Found as pods, the agents need the Kubernetes source, which the
	// runner gathers first; a run without it says so.
	p, err = NewProvider(&Config{}, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if uses := p.(diag.Dependent).Uses(); len(uses) != 1 || uses[0] != "kube" {
		t.Errorf("uses %v, want kube", uses)
	}
	if _, err := p.Gather(context.Background()); err == nil || !strings.Contains(err.Error(), "needs the Kubernetes source") {
		t.Errorf("pods without a cluster: %v", err)
	}
	p, _ = NewProvider(&Config{Addresses: []string{"10.0.0.1"}}, diag.Env{})
	if uses := p.(diag.Dependent).Uses(); len(uses) != 0 {
		t.Errorf("configured addresses use %v, want nothing", uses)
	}
	if _, err := NewProvider(&Config{Addresses: []string{"10.0.0.1"}, TLS: &TLSConfig{CAFile: "/nonexistent"}}, diag.Env{}); err == nil || !strings.Contains(err.Error(), "caFile") {
		t.Errorf("missing CA file: %v", err)
	}
}

func roundLine(t *testing.T, seq uint64) string {
	t.Helper()
	b, err := protojson.Marshal(&pb.ProbeRound{Sequence: seq, EndTime: timestamppb.Now(), Agent: &pb.AgentInfo{Version: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNewestRound(t *testing.T) {
	r1, r2 := roundLine(t, 1), roundLine(t, 2)
	slog := `{"time":"2026-05-01T12:00:00Z","level":"ERROR","msg":"write round","err":"broken pipe"}`
	for _, tc := range []struct {
		name         string
		tail         string
		seq          uint64
		lines, other int
	}{
		{"one round", r1 + "\n", 1, 1, 0},
		{"newest wins", r1 + "\n" + r2 + "\n", 2, 2, 0},
		{"agent messages after the round", r1 + "\n" + slog + "\ntext log line\n", 1, 3, 2},
		{"a JSON log line is not a round", slog + "\n", 0, 1, 1},
		{"cut line", r1 + "\n" + r2[:len(r2)/2], 1, 2, 1},
		{"empty", "", 0, 0, 0},
		{"no final newline", r2, 2, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, lines, other := NewestRound([]byte(tc.tail))
			var seq uint64
			if r != nil {
				seq = r.Sequence
			}
			if seq != tc.seq || lines != tc.lines || other != tc.other {
				t.Errorf("round %d, %d lines, %d other; want %d, %d, %d", seq, lines, other, tc.seq, tc.lines, tc.other)
			}
		})
	}
}

func TestClassifyDial(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	for _, tc := range []struct {
		err  error
		want DialOutcome
	}{
		{op(syscall.ECONNREFUSED), Refused},
		{op(syscall.ENETUNREACH), Unreachable},
		{op(syscall.EHOSTUNREACH), Unreachable},
		{context.DeadlineExceeded, TimedOut},
		{&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, TimedOut},
		{errors.New("odd"), DialError},
	} {
		if got := classifyDial(tc.err); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestLatestAndFresh(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(seq uint64, age time.Duration) *pb.ProbeRound {
		return &pb.ProbeRound{Sequence: seq, EndTime: timestamppb.New(now.Add(-age))}
	}
	s := &Snapshot{Now: now, MaxAge: time.Minute}
	for _, tc := range []struct {
		name      string
		a         *Agent
		seq       uint64
		via       string
		fresh     bool
		wantAgeGE time.Duration
	}{
		{"direct newer", &Agent{Direct: Direct{Round: at(5, 0)}, Log: Log{Round: at(4, 30*time.Second)}}, 5, "ProbeService.Run", true, 0},
		{"log only", &Agent{Log: Log{Round: at(4, 30*time.Second)}}, 4, "pods/log", true, 30 * time.Second},
		{"stale", &Agent{Log: Log{Round: at(4, 2*time.Minute)}}, 4, "pods/log", false, 2 * time.Minute},
		{"clock ahead", &Agent{Log: Log{Round: at(4, -time.Hour)}}, 4, "pods/log", true, 0},
		{"none", &Agent{}, 0, "", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, via, age := s.Latest(tc.a)
			var seq uint64
			if r != nil {
				seq = r.Sequence
			}
			if seq != tc.seq || via != tc.via || age < tc.wantAgeGE || age < 0 {
				t.Errorf("Latest = %d via %q age %s", seq, via, age)
			}
			if fr, _ := s.Fresh(tc.a); (fr != nil) != tc.fresh {
				t.Errorf("Fresh = %v, want fresh %v", fr, tc.fresh)
			}
		})
	}
}
