package render

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// attack holds what a hostile cluster object or DNS answer can carry: a
// terminal title change (OSC 0 ending in BEL), clear screen, a carriage
// return that would overwrite the line, backspaces, NUL, DEL, a C1 CSI
// (U+009B, which some terminals obey like ESC [), a right-to-left override
// and a byte that is not UTF-8.
const attack = "ok\x1b]0;pwned\x07 \x1b[2J\rFAKE PASS\x08\x08 nul\x00 del\x7f c1\u009b31m nel\u0085 rlo\u202e end\xff"

// attacked returns a report in which every string field, in every message,
// list and map, holds the attack, with one result per status.
func attacked() *pb.Report {
	rep := sample()
	rep.Results = nil
	for _, st := range []pb.Status{pb.Status_PASS, pb.Status_WARN, pb.Status_FAIL, pb.Status_ERROR, pb.Status_SKIP} {
		rep.Results = append(rep.Results, &pb.Result{Status: st,
			Objects:  []*pb.Object{{}},
			Evidence: []*pb.Evidence{{}, {}},
		})
	}
	rep.Sources = append(rep.Sources, &pb.SourceStatus{State: pb.SourceStatus_FAILED})
	fill(rep.ProtoReflect())
	return rep
}

func fill(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			l := m.Mutable(fd).List()
			l.Append(protoreflect.ValueOfString(attack))
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := m.Get(fd).List()
			for j := range l.Len() {
				fill(l.Get(j).Message())
			}
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.StringKind:
			m.Mutable(fd).Map().Set(protoreflect.ValueOfString(attack).MapKey(), protoreflect.ValueOfString(attack))
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(attack))
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && m.Has(fd) && fd.Message().FullName().Parent() == "vnodediag.v1":
			fill(m.Mutable(fd).Message())
		}
	}
}

// sgr is the renderer's own colour sequences, the only ones allowed.
var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// terminalControls returns what in out a terminal would act on: C0
// controls other than newline and tab, DEL, C1 controls, and bytes that are
// not UTF-8; with format, also format characters (U+202E RIGHT-TO-LEFT
// OVERRIDE reorders what is shown), which the table escapes too.
func terminalControls(out string, format bool) []string {
	var bad []string
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRuneInString(out[i:])
		i += size
		switch {
		case r == '\n' || r == '\t':
		case r == utf8.RuneError && size == 1:
			bad = append(bad, fmt.Sprintf("invalid UTF-8 at %d", i))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || (format && unicode.Is(unicode.Cf, r)):
			bad = append(bad, fmt.Sprintf("%U at %d", r, i))
		}
	}
	return bad
}

func TestTableEscapesEveryString(t *testing.T) {
	for _, opt := range []Options{{}, {Color: true}, {Verbose: true}, {Color: true, Verbose: true, Width: 40}} {
		var b bytes.Buffer
		if err := Write(&b, "table", attacked(), opt); err != nil {
			t.Fatal(err)
		}
		out := sgr.ReplaceAllString(b.String(), "")
		if bad := terminalControls(out, true); len(bad) > 0 {
			t.Errorf("options %+v: the table carries %d terminal controls, first %v:\n%s", opt, len(bad), bad[0], b.String())
		}
		for _, shown := range []string{`ok\x1b]0;pwned\x07`, `\x1b[2J\x0dFAKE PASS\x08\x08`, `nul\x00`, `del\x7f`, `c1\u009b31m`, `nel\u0085`, `rlo\u202e`, `end\xff`} {
			if !strings.Contains(out, shown) {
				t.Errorf("options %+v: %q is not shown escaped", opt, shown)
			}
		}
	}
}

func TestJUnitEscapesAndStaysXML(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "junit", attacked(), Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if bad := terminalControls(out, true); len(bad) > 0 {
		t.Errorf("JUnit carries terminal controls: %v", bad)
	}
	if strings.ContainsRune(out, utf8.RuneError) {
		t.Error("JUnit replaced characters with U+FFFD instead of showing them")
	}
	dec := xml.NewDecoder(strings.NewReader(out))
	dec.Strict = true
	var cases int
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("JUnit is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "testcase" {
			cases++
			for _, a := range se.Attr {
				if a.Name.Local == "name" && !strings.Contains(a.Value, `\x1b]0;pwned\x07`) {
					t.Errorf("testcase name %q does not show the escape", a.Value)
				}
			}
		}
	}
	if cases != 5 {
		t.Errorf("%d test cases, want 5", cases)
	}
}

// JSON and YAML carry every string exactly (their own escapes), and no raw
// control character reaches the output either.
func TestJSONAndYAMLExact(t *testing.T) {
	want := attacked()
	diag.ValidUTF8(want) // protobuf strings are UTF-8; the stray byte becomes U+FFFD
	for _, format := range []string{"json", "yaml"} {
		var b bytes.Buffer
		if err := Write(&b, format, attacked(), Options{}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for i, c := range b.Bytes() {
			if (c < 0x20 && c != '\n') || c == 0x7f {
				t.Fatalf("%s: raw control byte %#x at %d", format, c, i)
			}
		}
		if bad := terminalControls(b.String(), false); len(bad) > 0 {
			t.Errorf("%s carries terminal controls: %v", format, bad)
		}
		js := b.Bytes()
		if format == "yaml" {
			var err error
			if js, err = yaml.YAMLToJSON(js); err != nil {
				t.Fatalf("yaml does not read back: %v", err)
			}
		}
		got := &pb.Report{}
		if err := protojson.Unmarshal(js, got); err != nil {
			t.Fatalf("%s does not read back: %v", format, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s does not carry the strings exactly:\n got %v\nwant %v", format, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcödé, 日本語, emoji 🙂": "plain text, ünïcödé, 日本語, emoji 🙂",
		"line\nnext\ttab":              "line\nnext\ttab",
		`C:\path\x1b stays`:            `C:\path\x1b stays`,
		"\x1b[2J\r\a\b\x00\x7f":        `\x1b[2J\x0d\x07\x08\x00\x7f`,
		"\u009b\u0085\u00a0":           `\u009b\u0085\u00a0`,
		"\u202e\u200b\ufeff\U000e0001": `\u202e\u200b\ufeff\U000e0001`,
		"bad\xff\xfe":                  `bad\xff\xfe`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}
