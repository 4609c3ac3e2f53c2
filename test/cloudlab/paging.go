package cloudlab

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// pageNumbers reads PageNumber (>= 1, default 1) and PageSize (1..max,
// default def) as the PageNumber/PageSize APIs document them.
func pageNumbers(c *Call, def, maxSize int) (number, size int, e *APIError) {
	number, size = 1, def
	if v := c.Params["PageNumber"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, invalid("PageNumber", v)
		}
		number = n
	}
	if v := c.Params["PageSize"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSize {
			return 0, 0, apiErr(400, "InvalidParameter", "The specified parameter \"PageSize\" is not valid: %q (1-%d).", v, maxSize)
		}
		size = n
	}
	return number, size, nil
}

// list answers a PageNumber/PageSize list call: RegionId (required when
// regional) and PageNumber/PageSize (1..maxSize, default def) read, the
// data set read-locked while answer builds the answer.
func (s *Server) list(c *Call, regional bool, def, maxSize int, answer func(d *DataSet, region string, number, size int) map[string]any) (map[string]any, *APIError) {
	region := c.Params["RegionId"]
	if regional && region == "" {
		return nil, missing("RegionId")
	}
	n, size, e := pageNumbers(c, def, maxSize)
	if e != nil {
		return nil, e
	}
	s.Data.mu.RLock()
	defer s.Data.mu.RUnlock()
	return answer(s.Data, region, n, size), nil
}

// numbered is the answer of a PageNumber/PageSize list: the page fields
// with TotalCount, and the page nested as documented (outer.inner[]).
func numbered[T any](number, size int, items []T, outer, inner string, row func(T) any) map[string]any {
	return map[string]any{"PageNumber": number, "PageSize": size, "TotalCount": len(items), outer: map[string]any{inner: rows(page(items, number, size), row)}}
}

// rows renders items with row, an empty list (not null) for none.
func rows[T any](items []T, row func(T) any) []any {
	list := []any{}
	for _, x := range items {
		list = append(list, row(x))
	}
	return list
}

// idList reads a parameter that is a JSON array of at most 100 IDs
// (InstanceIds, SecurityGroupIds); nil when it is absent.
func idList(c *Call, param string, malformed, tooMany *APIError) (map[string]bool, *APIError) {
	raw, ok := c.Params[param]
	if !ok {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return nil, malformed
	}
	if len(list) > 100 {
		return nil, tooMany
	}
	ids := map[string]bool{}
	for _, id := range list {
		ids[id] = true
	}
	return ids, nil
}

// eitherPage cuts one page of an ECS list that pages by NextToken and
// MaxResults (then TotalCount is not meaningful and is left out) or by
// PageNumber and PageSize, whichever the request uses, and adds the
// answer's page fields to out.
func eitherPage[T any](c *Call, out map[string]any, items []T, tokenDef, tokenMax, numberDef, numberMax int) ([]T, *APIError) {
	if c.Params["NextToken"] != "" || c.Params["MaxResults"] != "" {
		p, next, e := tokenPage(c, items, "MaxResults", tokenDef, tokenMax)
		out["NextToken"] = next
		return p, e
	}
	n, size, e := pageNumbers(c, numberDef, numberMax)
	if e != nil {
		return nil, e
	}
	out["PageNumber"], out["PageSize"], out["TotalCount"] = n, size, len(items)
	return page(items, n, size), nil
}

// page cuts items[start:start+size] for PageNumber/PageSize.
func page[T any](items []T, number, size int) []T {
	start := (number - 1) * size
	if start >= len(items) {
		return []T{}
	}
	return items[start:min(len(items), start+size)]
}

// tokenPage reads NextToken and the page-size parameter (MaxResults, or
// MaxResult for DescribeRouteEntryList) and cuts one page. The token is
// opaque to the client: it encodes the offset and a digest of the query, so
// a token replayed with another query is rejected, as the API does.
func tokenPage[T any](c *Call, items []T, sizeParam string, def, maxSize int) ([]T, string, *APIError) {
	size := def
	if v := c.Params[sizeParam]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSize {
			return nil, "", apiErr(400, "InvalidParameter", "The specified parameter %q is not valid: %q (1-%d).", sizeParam, v, maxSize)
		}
		size = n
	}
	digest := queryDigest(c, sizeParam)
	start := 0
	if tok := c.Params["NextToken"]; tok != "" {
		off, err := decodeToken(tok, digest)
		if err != nil || off > len(items) {
			return nil, "", apiErr(400, "InvalidNextToken", "The specified NextToken is invalid or expired.")
		}
		start = off
	}
	end := min(len(items), start+size)
	next := ""
	if end < len(items) {
		next = encodeToken(end, digest)
	}
	return items[start:end], next, nil
}

// queryDigest identifies the filters of a paged query: every parameter but
// the signing ones and the paging ones.
func queryDigest(c *Call, sizeParam string) string {
	skip := map[string]bool{
		"Signature": true, "SignatureNonce": true, "Timestamp": true, "NextToken": true, sizeParam: true,
		"AccessKeyId": true, "SecurityToken": true, "SignatureMethod": true, "SignatureVersion": true, "SignatureType": true,
	}
	keys := make([]string, 0, len(c.Params))
	for k := range c.Params {
		if !skip[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s&", k, c.Params[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func encodeToken(offset int, digest string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%s:%d", digest, offset)))
}

func decodeToken(tok, digest string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, errBadToken
	}
	d, off, ok := strings.Cut(string(b), ":")
	if !ok || d != digest {
		return 0, errBadToken
	}
	n, err := strconv.Atoi(off)
	if err != nil || n < 0 {
		return 0, errBadToken
	}
	return n, nil
}
