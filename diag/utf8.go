package diag

import (
	"strings"
	"unicode/utf8"

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
	return validUTF8(m.ProtoReflect())
}

func validUTF8(m protoreflect.Message) bool {
	changed := false
	fix := func(s string) (protoreflect.Value, bool) {
		if utf8.ValidString(s) {
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfString(strings.ToValidUTF8(s, "\uFFFD")), true
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
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
					changed = validUTF8(l.Get(i).Message()) || changed
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
					changed = validUTF8(mv.Message()) || changed
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
			changed = validUTF8(v.Message()) || changed
		}
		return true
	})
	return changed
}
