package diag

import (
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// fillStrings sets every string field of m, and of one element of every
// message field and list of messages below it, to invalid UTF-8; it
// returns how many it set.
func fillStrings(m protoreflect.Message) int {
	n := 0
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			m.Mutable(fd).List().Append(protoreflect.ValueOfString("bad\xff"))
			n++
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := m.Mutable(fd).List()
			e := l.NewElement()
			n += fillStrings(e.Message())
			l.Append(e)
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString("bad\xff"))
			n++
		case fd.Kind() == protoreflect.MessageKind:
			n += fillStrings(m.Mutable(fd).Message())
		}
	}
	return n
}

// invalidStrings names the string fields of m (and below) that are not
// valid UTF-8.
func invalidStrings(m protoreflect.Message) []string {
	var bad []string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			for i := range v.List().Len() {
				if !utf8.ValidString(v.List().Get(i).String()) {
					bad = append(bad, string(fd.FullName()))
				}
			}
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := range v.List().Len() {
				bad = append(bad, invalidStrings(v.List().Get(i).Message())...)
			}
		case fd.Kind() == protoreflect.StringKind && !utf8.ValidString(v.String()):
			bad = append(bad, string(fd.FullName()))
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			bad = append(bad, invalidStrings(v.Message())...)
		}
		return true
	})
	return bad
}

// TestValidResultCoversEveryString: validResult mends every string field
// of a Result, so a field added to the message without a line in it
// fails here.
func TestValidResultCoversEveryString(t *testing.T) {
	r := &pb.Result{}
	if n := fillStrings(r.ProtoReflect()); n < 10 {
		t.Fatalf("only %d string fields filled", n)
	}
	validResult(r)
	if bad := invalidStrings(r.ProtoReflect()); len(bad) > 0 {
		t.Errorf("still invalid UTF-8 after validResult: %v", bad)
	}
	if r.Summary != "bad\uFFFD" {
		t.Errorf("summary %q", r.Summary)
	}
}

// TestValidReport: a report's results and the rest of it (a source's
// message) are mended; a valid report is left as it is.
func TestValidReport(t *testing.T) {
	rep := &pb.Report{Results: []*pb.Result{{Summary: "a\xff"}}, Sources: []*pb.SourceStatus{{Message: "b\xfe"}}}
	if !ValidReport(rep) || rep.Results[0].Summary != "a\uFFFD" || rep.Sources[0].Message != "b\uFFFD" {
		t.Errorf("after ValidReport: %v", rep)
	}
	if ValidReport(rep) {
		t.Error("a valid report changed")
	}
}
