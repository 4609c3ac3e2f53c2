package render

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Report strings come from the cluster and the network: a container's
// waiting message, an image name, a DNS answer, a peer's NOTIFICATION text.
// Printed raw, an ESC or a C1 control in them would drive the terminal
// (set its title, clear the screen, move the cursor, hide text with CR).
// Everything the table and JUnit renderers and the CLI's error messages
// print goes through Escape; JSON and YAML carry the data exactly, in their
// own escapes.

// Escape returns s with every character a terminal could act on shown as
// an escape: C0 controls, DEL and invalid UTF-8 bytes as \xNN, C1 controls
// and other non-printing characters (format characters such as U+202E
// RIGHT-TO-LEFT OVERRIDE, unassigned code points) as \uNNNN. Newlines and
// tabs stay, as do printable characters of every script; a backslash is
// not doubled, so ordinary text (paths, regular expressions) reads as it is.
func Escape(s string) string {
	if safe(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r != ' ':
			if r > 0xffff {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// safe reports whether Escape would return s unchanged.
func safe(s string) bool {
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && !unicode.IsPrint(r)) {
			return false
		}
	}
	return true
}

// EscapeJSONControls rewrites the DEL and C1 control characters that JSON
// encoders (protojson, log/slog) leave raw inside strings as \u escapes:
// the same JSON value, but nothing a terminal acts on, and a stream the
// YAML reader accepts (YAML forbids them unescaped). b must be JSON: in
// UTF-8, 0xC2 followed by 0x80-0x9F is always U+0080-U+009F, and JSON
// holds non-ASCII bytes only inside strings.
func EscapeJSONControls(b []byte) []byte {
	if bytes.IndexByte(b, 0x7f) < 0 && bytes.IndexByte(b, 0xc2) < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == 0x7f:
			out = append(out, `\u007f`...)
		case b[i] == 0xc2 && i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] <= 0x9f:
			out = fmt.Appendf(out, `\u%04x`, b[i+1])
			i++
		default:
			out = append(out, b[i])
		}
	}
	return out
}
