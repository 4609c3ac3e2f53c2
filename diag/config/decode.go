package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The configuration's Go types belong to the packages that use them and
// name their fields with json tags, which programs that write configs rely
// on too. The file is YAML; it is read with yaml.v3 into a node tree, and
// the tree is decoded here against the json tags, so that:
//   - field names match exactly (sigs.k8s.io/yaml, through encoding/json,
//     matched them case-insensitively: EstablishTIMEOUT was accepted);
//   - every error carries the line of the node it is about, not a guess;
//   - types with their own UnmarshalJSON (Duration, dnsprobe.Reachability)
//     keep working, fed the JSON form of their node.

const (
	// maxNodes bounds the nodes visited, aliases expanded: a small file
	// of nested aliases must not expand into billions of values.
	maxNodes = 100_000
	// maxErrors caps the decode errors reported at once.
	maxErrors = 10
	// maxListed caps the names an error lists.
	maxListed = 12
)

// DecodeYAML decodes the one YAML document in b into v, a pointer to a
// struct with json tags, as the configuration file is decoded: exact field
// names, errors naming their line, bounded expansion. Other files of
// vnodediag (the agent's probe plan) are read with it too.
func DecodeYAML(b []byte, v any) error { return decodeYAML(b, v) }

// decodeYAML decodes the one YAML document in b into v, a pointer to a
// struct with json tags.
func decodeYAML(b []byte, v any) error {
	root, err := oneDocument(b)
	if err != nil {
		return err
	}
	d := &decoder{budget: maxNodes}
	d.decode(root, reflect.ValueOf(v).Elem(), "")
	if len(d.errs) > maxErrors {
		more := len(d.errs) - maxErrors
		d.errs = append(d.errs[:maxErrors], fmt.Errorf("and %d more errors", more))
	}
	return errors.Join(d.errs...)
}

// oneDocument parses b and returns the root node of its only document. A
// file with no document (empty, or only comments) is an error, and so is a
// file with a second document, which would otherwise be silently ignored;
// empty documents (a trailing "---") do not count.
func oneDocument(b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(n.Content) == 0 || isNull(n.Content[0]) {
			continue
		}
		docs = append(docs, n.Content[0])
	}
	switch len(docs) {
	case 0:
		return nil, errors.New("no settings: the file is empty or holds only comments")
	case 1:
		return docs[0], nil
	}
	return nil, fmt.Errorf("config has %d YAML documents; want one (the second starts on line %d)", len(docs), docs[1].Line)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

type decoder struct {
	budget int
	errs   []error
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.errs = append(d.errs, fmt.Errorf("line %d: %s", n.Line, msg))
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// decode stores n into v (settable), reporting errors with path, the
// dotted field path ("bgp.peers[1].asn").
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.fail(n, path, "more than %d values (aliases expanding?)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(jsonUnmarshaler) {
		d.decodeJSON(n, v.Addr().Interface().(json.Unmarshaler), path)
		return
	}
	if isNull(n) {
		// Like JSON null: the field keeps its zero value (a section left
		// out, the default).
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode || v.Type().Key().Kind() != reflect.String {
			d.fail(n, path, "want a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, joinPath(path, k.Value))
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", describe(n))
			return
		}
		// The literal as written: a password 0123 stays "0123".
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.fail(n, path, "want an integer from %d to %d, got %s", minInt(v.Type()), maxInt(v.Type()), describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			d.fail(n, path, "want an integer from 0 to %d, got %s", maxUint(v.Type()), describe(n))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&f) != nil || v.OverflowFloat(f) {
			d.fail(n, path, "want a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

// decodeStruct matches the keys of mapping n against the json tags of v's
// fields, exactly.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of %s, got %s", capNames(fieldNames(v.Type())), describe(n))
		return
	}
	fields := structFields(v.Type())
	isMerge := func(k *yaml.Node) bool {
		return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
	}
	// A merge key (<<: *defaults) first, wherever it is written: the keys
	// written here override what it brings.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMerge(n.Content[i]) {
			d.decodeMerge(n.Content[i+1], v, path)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "want a field name, got %s", describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(k, path, "field %q is set twice (first on line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, "", "unknown field %q%s%s", k.Value, in(path), suggest(k.Value, fieldNames(v.Type())))
			continue
		}
		d.decode(val, v.FieldByIndex(idx), joinPath(path, k.Value))
	}
}

func (d *decoder) decodeMerge(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.fail(n, path, "more than %d values (aliases expanding?)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		d.decodeStruct(n, v, path)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			d.decodeMerge(c, v, path)
		}
	default:
		d.fail(n, path, "a merge (<<) takes a mapping or a list of mappings, got %s", describe(n))
	}
}

// decodeJSON feeds a type with its own UnmarshalJSON the JSON form of n.
func (d *decoder) decodeJSON(n *yaml.Node, u json.Unmarshaler, path string) {
	x, err := d.jsonValue(n, 0)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	b, err := json.Marshal(x)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	if err := u.UnmarshalJSON(b); err != nil {
		d.fail(n, path, "%v", err)
	}
}

// jsonValue converts n to what encoding/json marshals as the same value.
func (d *decoder) jsonValue(n *yaml.Node, depth int) (any, error) {
	if d.budget--; d.budget < 0 {
		return nil, fmt.Errorf("more than %d values (aliases expanding?)", maxNodes)
	}
	if depth > 100 {
		return nil, errors.New("nested too deeply")
	}
	switch n.Kind {
	case yaml.AliasNode:
		return d.jsonValue(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, err := d.jsonValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			x, err := d.jsonValue(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			out[n.Content[i].Value] = x
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool", "!!int", "!!float":
			var x any
			if err := n.Decode(&x); err != nil {
				return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
			}
			if f, ok := x.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
				return n.Value, nil
			}
			return x, nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("unexpected %s", describe(n))
}

// describe names what a node holds, for "want X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.AliasNode:
		return describe(n.Alias)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "a document"
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func in(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// suggest is "; did you mean "x"?" for a field that differs only in case,
// else the list of valid fields.
func suggest(key string, valid []string) string {
	for _, f := range valid {
		if strings.EqualFold(f, key) {
			return fmt.Sprintf("; did you mean %q? (field names are case-sensitive)", f)
		}
	}
	return "; valid fields: " + capNames(valid)
}

func capNames(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListed], ", "), len(names)-maxListed)
}

// structFields maps the json names of t's fields (embedded structs
// flattened) to their index paths.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int{}, prefix...), i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" && tag == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					continue // an embedded pointer would need allocating; none exists
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, idx)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := out[name]; !dup {
				out[name] = idx
			}
		}
	}
	walk(t, nil)
	return out
}

// fieldNames are the json names of t's fields, in declaration order.
func fieldNames(t reflect.Type) []string {
	fields := structFields(t)
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := fields[names[i]], fields[names[j]]
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return len(a) < len(b)
	})
	return names
}

func minInt(t reflect.Type) int64 { return -1 << (t.Bits() - 1) }
func maxInt(t reflect.Type) int64 { return 1<<(t.Bits()-1) - 1 }
func maxUint(t reflect.Type) uint64 {
	return math.MaxUint64 >> (64 - t.Bits())
}
