package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"

	"github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// gobgpLogger adapts gobgp's logger to slog and, more importantly, turns
// the speaker's per-peer messages into the "last error" of each session:
// gobgp's API reports the FSM state but not why a session failed.
//
// Passwords are kept out by field, not by searching the text: gobgp's
// messages and scalar fields (addresses, states, errors of the network
// calls) never hold a password, and a field holding a configuration value
// (which would carry the peer's AuthPassword) is dropped whole (see
// logValue). Searching the text for the password would instead mangle
// every message that happens to contain it ("dial tcp" with the password
// "tcp"), which both garbles the message and gives the password away.
type gobgpLogger struct {
	log *slog.Logger
	// onPeerError receives (peer address, reason) for every message that
	// explains a failed or lost session.
	onPeerError func(addr, reason string)
	// onPrefixLimit receives the peer address when its limit was hit.
	onPrefixLimit func(addr string)
	// onMD5Failure receives the peer address and the error when the
	// speaker could not set the peer's TCP-MD5 key on its listener.
	onMD5Failure func(addr string, err error)
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
		l.onPeerError(addr, reason)
	}
	if msg == "failed to set md5" && addr != "" && l.onMD5Failure != nil {
		// gobgp only warns and goes on to accept the peer unauthenticated;
		// the observer refuses to run that session instead.
		err, _ := f["Err"].(error)
		if err == nil {
			err = errors.New("the speaker could not set the key on its listener")
		}
		l.onMD5Failure(addr, err)
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
		attrs = append(attrs, strings.ToLower(k), logValue(f[k]))
	}
	l.log.Log(context.Background(), level, strings.ToLower(msg), attrs...)
}

// Packages whose types hold peer configuration (and so AuthPassword).
var configPackages = []string{
	"github.com/osrg/gobgp/v3/api",
	"github.com/osrg/gobgp/v3/pkg/config",
	"github.com/osrg/gobgp/v3/internal/pkg/config",
}

// logValue is the text of one gobgp log field, or a placeholder when the
// field is, or holds, a configuration value (which may carry a password).
func logValue(v any) string {
	if v == nil {
		return "<nil>"
	}
	if t := reflect.TypeOf(v); printsConfig(t, 0) {
		return "<" + t.String() + " omitted>"
	}
	return fmt.Sprint(v)
}

// printsConfig reports whether fmt.Sprint of a value of type t could print
// a configuration value: t is a gobgp configuration type, or contains one
// where %v prints contents (struct fields, array, slice and map elements,
// and a pointer at the top level; deeper pointers print as addresses).
// A value with an Error or String method prints through it. Interface
// elements other than error (map[string]any) could hold anything, so they
// count.
func printsConfig(t reflect.Type, depth int) bool {
	if depth > 8 {
		return true // deep enough to be suspicious; be safe
	}
	if isConfig(t) || (t.Kind() == reflect.Pointer && isConfig(t.Elem())) {
		return true
	}
	if depth == 0 && (t.Implements(errorType) || t.Implements(stringerType)) {
		return false // printed by its method: the errors of network calls, addresses, families
	}
	switch t.Kind() {
	case reflect.Interface:
		return !t.Implements(errorType)
	case reflect.Pointer:
		return depth == 0 && printsConfig(t.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		return printsConfig(t.Elem(), depth+1)
	case reflect.Map:
		return printsConfig(t.Key(), depth+1) || printsConfig(t.Elem(), depth+1)
	case reflect.Struct:
		for i := range t.NumField() {
			if printsConfig(t.Field(i).Type, depth+1) {
				return true
			}
		}
	}
	return false
}

func isConfig(t reflect.Type) bool {
	for _, p := range configPackages {
		if pkg := t.PkgPath(); pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

var (
	errorType    = reflect.TypeFor[error]()
	stringerType = reflect.TypeFor[fmt.Stringer]()
)

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
