package diag

import (
	"strings"
	"unicode/utf8"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ValidUTF8 replaces invalid UTF-8 in every string field of m (in place)
// with U+FFFD and reports whether it changed anything. Protobuf strings
// must be UTF-8: without this, one container message holding a stray byte
// would make the JSON and YAML output, and the daemon's reply, fail.
func ValidUTF8(m proto.Message) bool {
	if m == nil {
		return false
	}
	return validUTF8(m.ProtoReflect(), nil)
}

// ValidReport is ValidUTF8 for a report, its results mended field by field
// (see validResult): what a server does to every report it sends.
func ValidReport(rep *pb.Report) bool {
	changed := false
	for _, r := range rep.GetResults() {
		changed = validResult(r) || changed
	}
	m := rep.ProtoReflect()
	return validUTF8(m, m.Descriptor().Fields().ByName("results")) || changed
}

// validUTF8 mends m's strings, but not those of the field skip (nil: all).
func validUTF8(m protoreflect.Message, skip protoreflect.FieldDescriptor) bool {
	changed := false
	fix := func(s string) (protoreflect.Value, bool) {
		if utf8.ValidString(s) {
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfString(strings.ToValidUTF8(s, "\uFFFD")), true
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd == skip {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				switch fd.Kind() {
				case protoreflect.StringKind:
					if nv, ok := fix(l.Get(i).String()); ok {
						l.Set(i, nv)
						changed = true
					}
				case protoreflect.MessageKind, protoreflect.GroupKind:
					changed = validUTF8(l.Get(i).Message(), nil) || changed
				}
			}
		case fd.IsMap():
			mp := v.Map()
			var bad []protoreflect.MapKey
			mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapKey().Kind() == protoreflect.StringKind && !utf8.ValidString(k.String()) {
					bad = append(bad, k)
				}
				switch fd.MapValue().Kind() {
				case protoreflect.StringKind:
					if nv, ok := fix(mv.String()); ok {
						mp.Set(k, nv)
						changed = true
					}
				case protoreflect.MessageKind, protoreflect.GroupKind:
					changed = validUTF8(mv.Message(), nil) || changed
				}
				return true
			})
			for _, k := range bad {
				mv := mp.Get(k)
				mp.Clear(k)
				nk, _ := fix(k.String())
				mp.Set(nk.MapKey(), mv)
				changed = true
			}
		case fd.Kind() == protoreflect.StringKind:
			if nv, ok := fix(v.String()); ok {
				m.Set(fd, nv)
				changed = true
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			changed = validUTF8(v.Message(), nil) || changed
		}
		return true
	})
	return changed
}

// validResult is ValidUTF8 for a Result, field by field instead of by
// reflection: a run at 150,000 pods finishes thousands of results
// (TestValidResultCoversEveryString holds it to every string field).
func validResult(r *pb.Result) (changed bool) {
	fix := func(s *string) {
		if !utf8.ValidString(*s) {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
			changed = true
		}
	}
	fix(&r.CheckId)
	fix(&r.Summary)
	fix(&r.Remediation)
	fix(&r.Reference)
	for _, o := range r.Objects {
		fix(&o.Kind)
		fix(&o.Namespace)
		fix(&o.Name)
	}
	for _, e := range r.Evidence {
		fix(&e.Label)
		fix(&e.Expected)
		fix(&e.Observed)
	}
	for _, s := range r.Snippets {
		fix(&s.Title)
		fix(&s.Language)
		fix(&s.Text)
	}
	return changed
}
