// Package corefile parses a CoreDNS Corefile (the Caddyfile syntax CoreDNS
// uses) into server blocks, their zones and their directives, and answers the
// two questions the dns.* checks ask: which zones does the kubernetes plugin
// serve (the cluster domain), and where is a zone forwarded. It parses only;
// it never reads imported files, so `import` lines are kept as directives.
package corefile

import (
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// Corefile is a parsed Corefile.
type Corefile struct {
	Servers []*Server
	// Snippets are the `(name) { ... }` definitions, by name.
	Snippets map[string][]*Directive
	// Imports are top-level `import` lines.
	Imports []*Directive
}

// Server is one server block.
type Server struct {
	// Keys as written: "example.org:53", ".", "dns://.:1053".
	Keys       []string
	Zones      []Zone
	Line       int
	Directives []*Directive
}

// Zone is a parsed server block key.
type Zone struct {
	Scheme string // "dns" unless written otherwise
	Name   string // FQDN, lower case, "." for the root
	Port   string // "53" unless written otherwise
}

// Directive is a plugin line with its optional block.
type Directive struct {
	Name  string
	Args  []string
	Line  int
	Block []*Directive
}

// Error is a syntax error with its line number.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

type token struct {
	text   string
	line   int
	quoted bool
	// first is set for the first token on its line.
	first bool
}

func (t token) is(s string) bool { return !t.quoted && t.text == s }

// lex splits the input into tokens; comments run from an unquoted # to the
// end of the line.
func lex(src string) ([]token, error) {
	if !utf8.ValidString(src) {
		return nil, &Error{Line: 1, Msg: "not valid UTF-8"}
	}
	var toks []token
	line, newLine := 1, true
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			newLine = true
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"' || c == '`':
			quote, start := c, line
			var b strings.Builder
			i++
			closed := false
			for i < len(src) {
				ch := src[i]
				if ch == '\\' && quote == '"' && i+1 < len(src) && (src[i+1] == '"' || src[i+1] == '\\') {
					b.WriteByte(src[i+1])
					i += 2
					continue
				}
				if ch == quote {
					closed = true
					i++
					break
				}
				if ch == '\n' {
					line++
				}
				b.WriteByte(ch)
				i++
			}
			if !closed {
				return nil, &Error{Line: start, Msg: "unterminated quoted string"}
			}
			toks = append(toks, token{text: b.String(), line: start, quoted: true, first: newLine})
			newLine = false
		default:
			start := i
			// A '#' inside a word is part of it; braces glued to a word
			// stay part of it too: only standalone braces open blocks.
			for i < len(src) && !strings.ContainsRune(" \t\r\n", rune(src[i])) {
				i++
			}
			toks = append(toks, token{text: src[start:i], line: line, first: newLine})
			newLine = false
		}
	}
	return toks, nil
}

// Parse parses a Corefile. A syntax error is an *Error with its line.
func Parse(src string) (*Corefile, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	cf := &Corefile{Snippets: map[string][]*Directive{}}
	for !p.done() {
		t := p.peek()
		if t.is("}") {
			return nil, &Error{Line: t.line, Msg: "unexpected '}'"}
		}
		if t.is("{") {
			return nil, &Error{Line: t.line, Msg: "'{' without server block keys"}
		}
		if t.is("import") && !t.quoted {
			d := p.line()
			if len(d.Args) == 0 {
				return nil, &Error{Line: d.Line, Msg: "import needs a file or snippet name"}
			}
			cf.Imports = append(cf.Imports, d)
			continue
		}
		// Keys: every token up to '{'; keys may span lines when a line
		// ends with a comma.
		var keys []token
		for !p.done() && !p.peek().is("{") {
			k := p.next()
			if k.is("}") {
				return nil, &Error{Line: k.line, Msg: "unexpected '}'"}
			}
			if len(keys) > 0 && k.first && !strings.HasSuffix(keys[len(keys)-1].text, ",") {
				return nil, &Error{Line: keys[0].line, Msg: fmt.Sprintf("server block %q must be followed by '{'", keys[0].text)}
			}
			keys = append(keys, k)
		}
		if p.done() {
			return nil, &Error{Line: keys[0].line, Msg: fmt.Sprintf("server block %q must be followed by '{'", keys[0].text)}
		}
		open := p.next()
		body, err := p.block(open.line)
		if err != nil {
			return nil, err
		}
		if len(keys) == 1 && strings.HasPrefix(keys[0].text, "(") && strings.HasSuffix(keys[0].text, ")") {
			name := strings.TrimSuffix(strings.TrimPrefix(keys[0].text, "("), ")")
			if name == "" {
				return nil, &Error{Line: keys[0].line, Msg: "snippet without a name"}
			}
			cf.Snippets[name] = body
			continue
		}
		s := &Server{Line: keys[0].line, Directives: body}
		for _, k := range keys {
			for _, part := range strings.Split(k.text, ",") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				z, err := ParseZone(part)
				if err != nil {
					return nil, &Error{Line: k.line, Msg: err.Error()}
				}
				s.Keys = append(s.Keys, part)
				s.Zones = append(s.Zones, z)
			}
		}
		if len(s.Zones) == 0 {
			return nil, &Error{Line: keys[0].line, Msg: "server block without zones"}
		}
		cf.Servers = append(cf.Servers, s)
	}
	return cf, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) done() bool  { return p.pos >= len(p.toks) }
func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token { t := p.toks[p.pos]; p.pos++; return t }

// line reads one directive: its name and the arguments on the same line,
// then a block if the line ends with '{'.
func (p *parser) line() *Directive {
	t := p.next()
	d := &Directive{Name: t.text, Line: t.line}
	for !p.done() && !p.peek().first && !p.peek().is("{") && !p.peek().is("}") {
		d.Args = append(d.Args, p.next().text)
	}
	return d
}

// block reads directives until the '}' that closes the block opened at line
// open.
func (p *parser) block(open int) ([]*Directive, error) {
	var out []*Directive
	for {
		if p.done() {
			return nil, &Error{Line: open, Msg: "'{' is never closed"}
		}
		t := p.peek()
		if t.is("}") {
			p.next()
			return out, nil
		}
		if t.is("{") {
			return nil, &Error{Line: t.line, Msg: "unexpected '{'"}
		}
		d := p.line()
		if !p.done() && p.peek().is("{") && !p.peek().first {
			o := p.next()
			sub, err := p.block(o.line)
			if err != nil {
				return nil, err
			}
			d.Block = sub
		}
		out = append(out, d)
	}
}

// ParseZone parses a server block key: [scheme://]zone[:port].
func ParseZone(key string) (Zone, error) {
	z := Zone{Scheme: "dns", Port: "53"}
	s := key
	if i := strings.Index(s, "://"); i >= 0 {
		z.Scheme = strings.ToLower(s[:i])
		s = s[i+3:]
		switch z.Scheme {
		case "dns":
		case "tls", "grpc":
			z.Port = map[string]string{"tls": "853", "grpc": "443"}[z.Scheme]
		case "https":
			z.Port = "443"
		default:
			return z, fmt.Errorf("server block key %q: unknown scheme %q", key, z.Scheme)
		}
	}
	if h, port, err := net.SplitHostPort(s); err == nil {
		s, z.Port = h, port
	} else if i := strings.LastIndex(s, ":"); i >= 0 && !strings.Contains(s[:i], ":") {
		s, z.Port = s[:i], s[i+1:]
	}
	if z.Port == "" {
		return z, fmt.Errorf("server block key %q: empty port", key)
	}
	for _, c := range z.Port {
		if c < '0' || c > '9' {
			if !strings.HasPrefix(z.Port, "{$") {
				return z, fmt.Errorf("server block key %q: port %q is not a number", key, z.Port)
			}
		}
	}
	if s == "" {
		s = "."
	}
	z.Name = CanonicalName(s)
	return z, nil
}

// inZone reports whether name equals zone or lies below it, in any case
// and with or without trailing dots.
func inZone(name, zone string) bool {
	return dns.IsSubDomain(CanonicalName(zone), CanonicalName(name))
}

// CanonicalName is a DNS name or zone in canonical form: lower case with
// its trailing dot, "." for the root.
func CanonicalName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "."
	}
	return dns.Fqdn(s)
}

// Find returns the directives named name in the block, including those
// inside snippets the block imports.
func (cf *Corefile) Find(s *Server, name string) []*Directive {
	var out []*Directive
	seen := map[string]bool{}
	var walk func(ds []*Directive)
	walk = func(ds []*Directive) {
		for _, d := range ds {
			if d.Name == "import" && len(d.Args) == 1 {
				if body, ok := cf.Snippets[d.Args[0]]; ok && !seen[d.Args[0]] {
					seen[d.Args[0]] = true
					walk(body)
				}
				continue
			}
			if d.Name == name {
				out = append(out, d)
			}
		}
	}
	walk(s.Directives)
	return out
}

// ClusterDomains returns the zones served by the kubernetes plugin (its
// arguments, else the zones of its server block), in order, without
// duplicates. Reverse zones (in-addr.arpa, ip6.arpa) are left out.
func (cf *Corefile) ClusterDomains() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range cf.Servers {
		for _, d := range cf.Find(s, "kubernetes") {
			zones := d.Args
			if len(zones) == 0 {
				for _, z := range s.Zones {
					zones = append(zones, z.Name)
				}
			}
			for _, z := range zones {
				z = CanonicalName(z)
				if inZone(z, "in-addr.arpa") || inZone(z, "ip6.arpa") || z == "." && len(d.Args) > 0 {
					continue
				}
				if !seen[z] {
					seen[z] = true
					out = append(out, z)
				}
			}
		}
	}
	return out
}

// Route is where CoreDNS sends queries for a zone.
type Route struct {
	// Server is the block that serves the zone; nil when none does.
	Server *Server
	// Directive is the forward (or proxy) line; nil when the block does
	// not forward the zone.
	Directive *Directive
	// Targets are the forward destinations as host:port, or the resolv.conf
	// path as written.
	Targets []string
}

// RouteFor finds the server block that serves zone on the given port (the
// block with the longest zone that contains it, as CoreDNS picks one) and its
// forward or proxy directive whose FROM contains the zone and whose except
// list does not exclude it.
func (cf *Corefile) RouteFor(zone, port string) Route {
	zone = CanonicalName(zone)
	var best *Server
	bestLen := -1
	for _, s := range cf.Servers {
		for _, z := range s.Zones {
			if z.Scheme != "dns" || z.Port != port || !inZone(zone, z.Name) {
				continue
			}
			if len(z.Name) > bestLen {
				best, bestLen = s, len(z.Name)
			}
		}
	}
	r := Route{Server: best}
	if best == nil {
		return r
	}
	var ds []*Directive
	ds = append(ds, cf.Find(best, "forward")...)
	ds = append(ds, cf.Find(best, "proxy")...)
	var bestFrom string
	for _, d := range ds {
		if len(d.Args) < 2 {
			continue
		}
		from := CanonicalName(d.Args[0])
		if !inZone(zone, from) || excepted(d, zone) {
			continue
		}
		if r.Directive == nil || len(from) > len(bestFrom) {
			r.Directive, bestFrom = d, from
		}
	}
	if r.Directive != nil {
		for _, t := range r.Directive.Args[1:] {
			r.Targets = append(r.Targets, NormalizeTarget(t))
		}
	}
	return r
}

func excepted(d *Directive, zone string) bool {
	for _, sub := range d.Block {
		if sub.Name != "except" {
			continue
		}
		for _, e := range sub.Args {
			if inZone(zone, e) {
				return true
			}
		}
	}
	return false
}

// NormalizeTarget turns a forward destination into host:port ("10.0.0.1" ->
// "10.0.0.1:53", "dns://10.0.0.1" -> "10.0.0.1:53"); a path (resolv.conf) and
// other schemes (tls://) are returned as written.
func NormalizeTarget(t string) string {
	if strings.HasPrefix(t, "/") || (strings.Contains(t, "://") && !strings.HasPrefix(strings.ToLower(t), "dns://")) {
		return t
	}
	t = strings.TrimPrefix(strings.TrimPrefix(t, "dns://"), "DNS://")
	if _, _, err := net.SplitHostPort(t); err == nil {
		return t
	}
	if ip := net.ParseIP(strings.Trim(t, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), "53")
	}
	return t
}
