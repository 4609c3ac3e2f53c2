// Package dnsprobe is the DNS source of vnodediag and its dns.* checks.
//
// The prober sends one question to one resolver (UDP with EDNS0, TCP retry
// on truncation) and classifies whatever happens into an Outcome: answered,
// NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout, connection refused,
// truncated-and-TCP-failed or malformed. The provider gathers every
// configured query at once, concurrently and bounded, so the whole DNS
// section costs about one query deadline; the checks only evaluate the
// gathered outcomes.
package dnsprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Kind classifies the outcome of one query.
type Kind string

// The outcomes of a query.
const (
	Answered           Kind = "answered"
	NXDomain           Kind = "NXDOMAIN"
	NoData             Kind = "NODATA"
	ServFail           Kind = "SERVFAIL"
	Refused            Kind = "REFUSED"
	OtherRcode         Kind = "rcode"
	Timeout            Kind = "timeout"
	ConnRefused        Kind = "connection refused"
	TruncatedTCPFailed Kind = "truncated, TCP failed"
	Malformed          Kind = "malformed reply"
	NetworkError       Kind = "network error"
	// Interrupted: the run ended (its deadline, Ctrl-C) before the query's
	// own deadline; nothing can be said about the server.
	Interrupted Kind = "interrupted"
)

// Responded reports whether a DNS server sent a well-formed reply.
func (k Kind) Responded() bool {
	switch k {
	case Answered, NXDomain, NoData, ServFail, Refused, OtherRcode:
		return true
	}
	return false
}

// Record is one answer record.
type Record struct {
	Name string
	Type string
	TTL  uint32
	// Data is the record's value: an address, a target name, "prio weight
	// port target" for SRV, the SOA fields.
	Data string
}

func (r Record) String() string { return fmt.Sprintf("%s %d %s %s", r.Name, r.TTL, r.Type, r.Data) }

// Outcome is what happened to one query.
type Outcome struct {
	Server string
	Name   string
	Type   string
	Kind   Kind
	// Rcode is the reply's response code name when a reply came back.
	Rcode   string
	Answers []Record
	RTT     time.Duration
	// TCP is set when the answer came over TCP after a truncated UDP reply.
	TCP      bool
	Attempts int
	// Ignored counts UDP replies dropped for a mismatched ID or question.
	Ignored int
	// Err is the error text for the failure kinds.
	Err string
}

// Summary is a short human form: "NOERROR 10.0.0.1 (TTL 60)", "timeout after 2s".
func (o *Outcome) Summary() string {
	if o == nil {
		return "not queried"
	}
	switch o.Kind {
	case Answered:
		const shown = 4
		vals := make([]string, 0, shown+1)
		for i, r := range o.Answers {
			if i == shown {
				vals = append(vals, fmt.Sprintf("and %d more", len(o.Answers)-shown))
				break
			}
			vals = append(vals, fmt.Sprintf("%s %s (TTL %d)", r.Type, r.Data, r.TTL))
		}
		s := "NOERROR " + strings.Join(vals, ", ")
		if o.TCP {
			s += " over TCP after truncation"
		}
		return s
	case NoData:
		return "NODATA (NOERROR, no " + o.Type + " record)"
	case NXDomain, ServFail, Refused:
		return string(o.Kind)
	case OtherRcode:
		return "rcode " + o.Rcode
	case ConnRefused:
		return "connection refused"
	case Interrupted:
		return "cut short: a deadline of the run or an interrupt came before the query's own"
	case Timeout:
		s := fmt.Sprintf("timeout after %s", o.RTT.Round(time.Millisecond))
		if o.Ignored > 0 {
			s += fmt.Sprintf(" (%d reply with mismatched ID or question ignored)", o.Ignored)
		}
		return s
	}
	if o.Err != "" {
		return string(o.Kind) + ": " + o.Err
	}
	return string(o.Kind)
}

// Values returns the data of the answer records of the queried type,
// normalized (lower case, no trailing dot), sorted.
func (o *Outcome) Values() []string {
	var v []string
	for _, r := range o.Answers {
		if r.Type == o.Type {
			v = append(v, normalizeValue(r.Data))
		}
	}
	sort.Strings(v)
	return slices.Compact(v)
}

func normalizeValue(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }

// Prober sends queries. The zero value uses a 1232-byte EDNS0 buffer and
// no retries.
type Prober struct {
	// UDPSize is the EDNS0 buffer size advertised (default 1232).
	UDPSize uint16
	// Retries re-sends a UDP query that got no reply; the attempts share the
	// context's deadline evenly, so retries never extend it.
	Retries int
}

// Query asks server (host:port) for name/qtype and classifies the result. The
// deadline comes from ctx; without one, Query uses 5 s.
func (p *Prober) Query(ctx context.Context, server, name string, qtype uint16) *Outcome {
	o := &Outcome{Server: server, Name: dns.Fqdn(strings.ToLower(name)), Type: dns.TypeToString[qtype]}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	start := time.Now()
	defer func() { o.RTT = time.Since(start) }()

	m := new(dns.Msg)
	m.SetQuestion(o.Name, qtype)
	m.RecursionDesired = true
	size := p.UDPSize
	if size == 0 {
		size = 1232
	}
	m.SetEdns0(size, false)

	attempts := p.Retries + 1
	slice := time.Until(deadline) / time.Duration(attempts)
	var r *dns.Msg
	var err error
	for i := 0; i < attempts; i++ {
		o.Attempts++
		actx, cancel := context.WithDeadline(ctx, time.Now().Add(slice))
		if i == attempts-1 {
			actx, cancel = context.WithDeadline(ctx, deadline)
		}
		var ignored int
		r, ignored, err = exchangeUDP(actx, m, server, size)
		cancel()
		o.Ignored += ignored
		if !isTimeout(err) || ctx.Err() != nil {
			break
		}
		m.Id = dns.Id()
	}
	if err != nil {
		classifyErr(o, err)
		return o
	}
	if r.Truncated {
		tr, terr := exchangeTCP(ctx, m, server)
		if terr != nil {
			o.Kind, o.Err = TruncatedTCPFailed, terr.Error()
			return o
		}
		r, o.TCP = tr, true
	}
	classifyReply(o, r, qtype)
	return o
}

func classifyErr(o *Outcome, err error) {
	o.Err = err.Error()
	var se syscall.Errno
	switch {
	case isTimeout(err):
		o.Kind = Timeout
	case errors.Is(err, syscall.ECONNREFUSED):
		o.Kind = ConnRefused
	case errors.As(err, &se):
		o.Kind = NetworkError
	case errors.Is(err, errMalformed):
		o.Kind = Malformed
	default:
		o.Kind = NetworkError
	}
}

func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

var errMalformed = errors.New("malformed reply")

// exchangeUDP sends m over a connected UDP socket, so that the kernel drops
// datagrams from any other source, and reads until a reply with m's ID and
// question arrives. Replies with another ID or question are counted and
// ignored (they may answer an earlier, timed-out attempt); a reply with the
// right ID that does not parse is malformed.
func exchangeUDP(ctx context.Context, m *dns.Msg, server string, size uint16) (*dns.Msg, int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	out, err := m.Pack()
	if err != nil {
		return nil, 0, err
	}
	if _, err := conn.Write(out); err != nil {
		return nil, 0, err
	}
	buf := make([]byte, max(int(size), 512)+512)
	ignored := 0
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ignored, context.DeadlineExceeded
			}
			return nil, ignored, err
		}
		r, ignore, err := acceptReply(buf[:n], m, server)
		if ignore {
			ignored++
			continue
		}
		return r, ignored, err
	}
}

// acceptReply reads one datagram received for query m: ignore is set for a
// datagram that answers something else (too short, another ID, not a
// response, another question); a reply with m's ID that does not parse is
// errMalformed, unless it is truncated, when its header is enough.
func acceptReply(b []byte, m *dns.Msg, server string) (r *dns.Msg, ignore bool, err error) {
	if len(b) < 12 {
		return nil, true, nil
	}
	if id := uint16(b[0])<<8 | uint16(b[1]); id != m.Id {
		return nil, true, nil
	}
	r = new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		// A truncated reply may be cut mid-record; the header is enough.
		if r.Truncated {
			return r, false, nil
		}
		return nil, false, fmt.Errorf("%w from %s: %v", errMalformed, server, err)
	}
	// Some servers leave the question out of REFUSED or FORMERR replies; a
	// question that is present must be ours.
	if !r.Response || (len(r.Question) > 0 && !sameQuestion(r.Question[0], m.Question[0])) {
		return nil, true, nil
	}
	return r, false, nil
}

// exchangeTCP sends m over TCP and reads one reply. The connection's
// deadline is the context's, and ending the context ends the read at once:
// a server that accepts and never answers costs the query's deadline, or
// less when the run is interrupted, never more.
func exchangeTCP(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	r, err := exchangeTCPConn(ctx, m, server)
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", server, err)
	}
	return r, nil
}

func exchangeTCPConn(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	co := &dns.Conn{Conn: conn}
	if err := co.WriteMsg(m); err != nil {
		return nil, ctxErr(ctx, err)
	}
	r, err := co.ReadMsg()
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	if r.Id != m.Id || !r.Response || (len(r.Question) > 0 && !sameQuestion(r.Question[0], m.Question[0])) {
		return nil, fmt.Errorf("%w: the TCP reply does not answer the query (ID %d, want %d)", errMalformed, r.Id, m.Id)
	}
	return r, nil
}

// ctxErr is the context's error when it ended (the I/O error is then only
// its consequence), else err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.DeadlineExceeded
	}
	return err
}

func classifyReply(o *Outcome, r *dns.Msg, qtype uint16) {
	o.Rcode = dns.RcodeToString[r.Rcode]
	for _, rr := range r.Answer {
		o.Answers = append(o.Answers, toRecord(rr))
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		o.Kind = NoData
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == qtype {
				o.Kind = Answered
			}
		}
	case dns.RcodeNameError:
		o.Kind = NXDomain
	case dns.RcodeServerFailure:
		o.Kind = ServFail
	case dns.RcodeRefused:
		o.Kind = Refused
	default:
		o.Kind = OtherRcode
	}
}

func toRecord(rr dns.RR) Record {
	h := rr.Header()
	rec := Record{Name: h.Name, Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl}
	switch v := rr.(type) {
	case *dns.A:
		rec.Data = v.A.String()
	case *dns.AAAA:
		rec.Data = v.AAAA.String()
	case *dns.CNAME:
		rec.Data = v.Target
	case *dns.SRV:
		rec.Data = fmt.Sprintf("%d %d %d %s", v.Priority, v.Weight, v.Port, v.Target)
	case *dns.SOA:
		rec.Data = fmt.Sprintf("%s %s %d", v.Ns, v.Mbox, v.Serial)
	default:
		rec.Data = strings.TrimPrefix(rr.String(), h.String())
	}
	return rec
}

// QType parses a record type name of the configuration.
func QType(s string) (uint16, bool) {
	if s == "" {
		return dns.TypeA, true
	}
	t, ok := dns.StringToType[strings.ToUpper(s)]
	if !ok {
		return 0, false
	}
	switch t {
	case dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeSRV, dns.TypeSOA:
		return t, true
	}
	return 0, false
}

func sameQuestion(a, b dns.Question) bool {
	return strings.EqualFold(a.Name, b.Name) && a.Qtype == b.Qtype && a.Qclass == b.Qclass
}
