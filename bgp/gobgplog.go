package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// gobgpLogger adapts gobgp's logger to slog and, more importantly, turns
// the speaker's per-peer messages into the "last error" of each session:
// gobgp's API reports the FSM state but not why a session failed.
type gobgpLogger struct {
	log     *slog.Logger
	secrets []string
	// onPeerError receives (peer address, reason) for every message that
	// explains a failed or lost session.
	onPeerError func(addr, reason string)
	// onPrefixLimit receives the peer address when its limit was hit.
	onPrefixLimit func(addr string)
}

var _ log.Logger = (*gobgpLogger)(nil)

func (l *gobgpLogger) Panic(msg string, f log.Fields) { l.emit(slog.LevelError, msg, f) }
func (l *gobgpLogger) Fatal(msg string, f log.Fields) { l.emit(slog.LevelError, msg, f) }
func (l *gobgpLogger) Error(msg string, f log.Fields) { l.emit(slog.LevelError, msg, f) }
func (l *gobgpLogger) Warn(msg string, f log.Fields)  { l.emit(slog.LevelWarn, msg, f) }
func (l *gobgpLogger) Info(msg string, f log.Fields)  { l.emit(slog.LevelInfo, msg, f) }
func (l *gobgpLogger) Debug(msg string, f log.Fields) { l.emit(slog.LevelDebug, msg, f) }

// SetLevel is ignored: the level must stay at debug, because gobgp only
// reports "failed to connect" (connection refused, timeouts) at debug.
func (l *gobgpLogger) SetLevel(log.LogLevel)  {}
func (l *gobgpLogger) GetLevel() log.LogLevel { return log.DebugLevel }

func (l *gobgpLogger) emit(level slog.Level, msg string, f log.Fields) {
	addr, _ := f["Key"].(string)
	if reason := peerReason(msg, f); reason != "" && addr != "" && l.onPeerError != nil {
		l.onPeerError(addr, redact(reason, l.secrets))
	}
	if msg == "prefix limit reached" && f["Pct"] == nil && addr != "" && l.onPrefixLimit != nil {
		l.onPrefixLimit(addr)
	}
	// gobgp is chatty at debug; keep its messages at debug and below ours.
	if level < slog.LevelWarn {
		level = slog.LevelDebug
	}
	if l.log == nil || !l.log.Enabled(context.Background(), level) {
		return
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]any, 0, 2*len(keys)+2)
	attrs = append(attrs, "component", "gobgp")
	for _, k := range keys {
		attrs = append(attrs, strings.ToLower(k), redact(fmt.Sprint(f[k]), l.secrets))
	}
	l.log.Log(context.Background(), level, strings.ToLower(redact(msg, l.secrets)), attrs...)
}

// peerReason extracts a human reason from the gobgp messages that explain
// why a session is not (or no longer) established; "" for the others.
func peerReason(msg string, f log.Fields) string {
	switch msg {
	case "failed to connect":
		return fmt.Sprintf("connect: %v", f["Error"])
	case "received notification":
		return "NOTIFICATION received from the router: " + notification(f)
	case "sent notification":
		if e, ok := f["Data"].(error); ok && f["Code"] == nil {
			return "NOTIFICATION sent to the router: " + e.Error()
		}
		return "NOTIFICATION sent to the router: " + notification(f)
	case "hold timer expired":
		return "hold timer expired (no KEEPALIVE from the router)"
	case "Peer Down":
		return fmt.Sprintf("session went down: %v", f["Reason"])
	case "prefix limit reached":
		if f["Pct"] == nil {
			return fmt.Sprintf("maximum prefix limit reached for %v", f["Family"])
		}
	case "Closed an accepted connection":
		return "an incoming connection was closed (already connected, or not accepted in this state)"
	}
	return ""
}

func notification(f log.Fields) string {
	code, _ := f["Code"].(uint8)
	sub, _ := f["Subcode"].(uint8)
	s := bgp.NewNotificationErrorCode(code, sub).String()
	if r, ok := f["Communicated-Reason"].(string); ok && r != "" {
		s += fmt.Sprintf(" (%q)", r)
	}
	return s
}
