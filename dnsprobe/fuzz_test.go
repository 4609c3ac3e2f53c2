package dnsprobe

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// FuzzClassifyReply feeds arbitrary datagrams, as a resolver on the network
// could send them, through what the prober does with a UDP reply: accept or
// ignore it (acceptReply), classify it (classifyReply) and describe it. Any
// input must give a known kind without panicking, and an answer is only
// ever taken from a reply to our own query.
func FuzzClassifyReply(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("api.svc.cloud.internal.", dns.TypeA)
	q.Id = 0x1234
	seed := func(build func(r *dns.Msg)) {
		r := new(dns.Msg)
		r.SetReply(q)
		build(r)
		b, err := r.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, dns.TypeA)
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		return r
	}
	seed(func(r *dns.Msg) { r.Answer = []dns.RR{rr("api.svc.cloud.internal. 60 IN A 10.255.2.20")} })
	seed(func(r *dns.Msg) {
		r.Answer = []dns.RR{rr("api.svc.cloud.internal. 60 IN CNAME lb.svc.cloud.internal."), rr("lb.svc.cloud.internal. 60 IN A 10.255.2.21")}
	})
	seed(func(r *dns.Msg) { r.Rcode = dns.RcodeNameError })
	seed(func(r *dns.Msg) { r.Rcode = dns.RcodeRefused; r.Question = nil })
	seed(func(r *dns.Msg) { r.Truncated = true })
	seed(func(r *dns.Msg) {
		r.Answer = []dns.RR{rr("api.svc.cloud.internal. 60 IN TXT \"\x1b]0;pwned\x07\"")}
	})
	f.Add([]byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0, 0xff}, dns.TypeA)
	f.Add([]byte{0x12, 0x34}, dns.TypeSRV)

	f.Fuzz(func(t *testing.T, b []byte, qtype uint16) {
		r, ignore, err := acceptReply(b, q, "192.0.2.53:53")
		if ignore || err != nil {
			if r != nil {
				t.Fatalf("ignored or failed reply returned a message: ignore %v err %v", ignore, err)
			}
			return
		}
		if r.Id != q.Id {
			t.Fatalf("accepted a reply with ID %d, want %d", r.Id, q.Id)
		}
		o := &Outcome{Server: "192.0.2.53:53", Name: q.Question[0].Name, Type: dns.TypeToString[qtype]}
		classifyReply(o, r, qtype)
		switch o.Kind {
		case Answered, NoData, NXDomain, ServFail, Refused, OtherRcode:
		default:
			t.Fatalf("kind %q for a well-formed reply", o.Kind)
		}
		if !o.Kind.Responded() {
			t.Fatalf("kind %q does not count as a reply", o.Kind)
		}
		if o.Kind == Answered && len(o.Answers) == 0 {
			t.Fatal("answered without answers")
		}
		s := o.Summary()
		if !utf8.ValidString(s) && utf8.ValidString(string(b)) {
			t.Fatalf("summary %q is not UTF-8", s)
		}
		for _, v := range o.Values() {
			if strings.HasSuffix(v, ".") && v != "." {
				t.Fatalf("value %q not normalized", v)
			}
		}
	})
}
