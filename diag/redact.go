package diag

import (
	"net/url"
	"regexp"
	"strings"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// userinfo matches the scheme and userinfo of a URL in free text, up to the
// last "@" of the authority (a password may hold an "@"; a "/" in it makes
// the URL invalid, but the text of a parse error still carries it).
var userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^\s"'<>()\[\]{}]*@`)

// RedactURLs removes the userinfo (user:password@) of every URL in s: in an
// error from an HTTP client, a kubeconfig server, a log line. The userinfo
// is removed whole, whatever the password is, so no word of it survives.
func RedactURLs(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	return userinfo.ReplaceAllString(s, "${1}")
}

// RedactURL removes the userinfo of one URL, which may lack a scheme
// (client-go accepts "user:password@host:6443" and adds https://).
func RedactURL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	if strings.Contains(s, "://") {
		return RedactURLs(s)
	}
	if u, err := url.Parse("https://" + s); err == nil && u.User != nil {
		u.User = nil
		return strings.TrimPrefix(u.String(), "https://")
	}
	// Not a URL: cut everything up to the last "@" rather than guess.
	return s[strings.LastIndex(s, "@")+1:]
}

// redactReport strips URL userinfo from the texts of the report's sources
// and cluster identity, and redactResult from those of a result (the
// runner's finish), so that no source and no check can leak a credential
// embedded in a URL.
func redactReport(rep *pb.Report) {
	for _, s := range rep.Sources {
		s.Message = RedactURLs(s.Message)
	}
	if c := rep.Cluster; c != nil {
		c.Server = RedactURL(c.Server)
		c.Context = RedactURLs(c.Context)
	}
}

func redactResult(r *pb.Result) {
	r.Summary = RedactURLs(r.Summary)
	r.Remediation = RedactURLs(r.Remediation)
	r.Reference = RedactURLs(r.Reference)
	for _, e := range r.Evidence {
		e.Label, e.Expected, e.Observed = RedactURLs(e.Label), RedactURLs(e.Expected), RedactURLs(e.Observed)
	}
	for _, o := range r.Objects {
		o.Name = RedactURLs(o.Name)
	}
}
