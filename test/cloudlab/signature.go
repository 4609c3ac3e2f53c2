package cloudlab

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"
)

// PercentEncode is the encoding of signature version 1.0: RFC 3986
// unreserved characters (A-Z a-z 0-9 - _ . ~) stay, every other byte of the
// UTF-8 form becomes %XY with upper-case hex. A space is %20, never +.
func PercentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// StringToSign builds the string of signature version 1.0 from the HTTP
// method and every request parameter except Signature: the parameters
// sorted by name, each name and value percent-encoded and joined as
// name=value with &, then
//
//	Method + "&" + PercentEncode("/") + "&" + PercentEncode(canonicalized query)
func StringToSign(method string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = PercentEncode(k) + "=" + PercentEncode(params[k])
	}
	return method + "&" + PercentEncode("/") + "&" + PercentEncode(strings.Join(parts, "&"))
}

// Sign is Base64(HMAC-SHA1(secret + "&", stringToSign)).
func Sign(stringToSign, secret string) string {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
