package cloudlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Product is one OpenAPI product the lab serves on its own endpoint.
type Product struct {
	Key     string // endpoint key in the vnodediag config: ecs, vpc, pvtz
	Name    string // product code in error recommendations: Ecs, Vpc, pvtz
	Version string // the API version every request must name
	Host    string // the public endpoint, used as HostId in error bodies
}

// Products are the products the lab serves, each on its own endpoint.
var Products = []Product{
	{Key: "ecs", Name: "Ecs", Version: "2014-05-26", Host: "ecs.aliyuncs.com"},
	{Key: "vpc", Name: "Vpc", Version: "2016-04-28", Host: "vpc.aliyuncs.com"},
	{Key: "pvtz", Name: "pvtz", Version: "2018-01-01", Host: "pvtz.aliyuncs.com"},
}

// handler answers one action. It returns the response body (without
// RequestId, which the server adds) or an API error.
type handler func(s *Server, c *Call) (map[string]any, *APIError)

// actions maps product key -> action -> handler.
var actions = map[string]map[string]handler{
	"ecs": {
		"DescribeInstances":              describeInstances,
		"DescribeSecurityGroups":         describeSecurityGroups,
		"DescribeSecurityGroupAttribute": describeSecurityGroupAttribute,
	},
	"vpc": {
		"DescribeVpcs":                 describeVpcs,
		"DescribeVSwitches":            describeVSwitches,
		"DescribeRouteTableList":       describeRouteTableList,
		"DescribeRouteEntryList":       describeRouteEntryList,
		"DescribeVirtualBorderRouters": describeVirtualBorderRouters,
		"DescribeBgpPeers":             describeBgpPeers,
		"DescribeBgpNetworks":          describeBgpNetworks,
	},
	"pvtz": {
		"DescribeZones":             describeZones,
		"DescribeZoneInfo":          describeZoneInfo,
		"DescribeResolverEndpoints": describeResolverEndpoints,
		"DescribeResolverRules":     describeResolverRules,
	},
}

// AccessKey is a key pair the lab accepts; Token set makes it an STS key
// whose requests must carry SecurityToken.
type AccessKey struct {
	ID, Secret, Token string
}

// Fault changes how the lab answers one action.
type Fault struct {
	// Latency is added before the answer (on top of Server.Latency).
	Latency time.Duration
	// Hang never answers: the request blocks until the client gives up or
	// the server closes.
	Hang bool
	// Throttle answers the next Throttle requests with ThrottleCode
	// (default Throttling.User); -1 throttles every request.
	Throttle     int
	ThrottleCode string
	// Deny answers with a permission error: Forbidden.RAM, NoPermission or
	// Forbidden.
	Deny string
	// DenyAsEmpty answers a denied list action with an empty list (HTTP
	// 200), as ECS DescribeInstances documents for a RAM user without the
	// permission; a DryRun request then gets the permission error.
	DenyAsEmpty bool
	// Hide hides these resource IDs, as a RAM policy that limits the action
	// by resource or condition key does: they are left out of lists, and
	// DryRun still passes.
	Hide []string
}

// Call is one request the lab served.
type Call struct {
	Product string
	Action  string
	// Params are the request parameters without Signature.
	Params map[string]string
	Method string
	Status int
	Code   string // error code, empty on success
	At     time.Time

	fault Fault
}

// Server is a local Alibaba Cloud OpenAPI endpoint per product. Start one
// with Start; it serves until Close.
type Server struct {
	Data *DataSet
	// Latency is added to every answer.
	Latency time.Duration
	// Now is the server's clock (Timestamp skew is judged against it).
	Now func() time.Time
	// MaxSkew is the allowed Timestamp skew (15 minutes, as documented).
	MaxSkew time.Duration

	keys      map[string]AccessKey
	endpoints map[string]string
	servers   []*http.Server
	listeners []net.Listener

	mu     sync.Mutex
	faults map[string]*Fault
	nonces map[string]time.Time
	calls  []Call
	limits map[string]*bucket

	inflight atomic.Int64
	conns    atomic.Int64
	closed   chan struct{}
	wg       sync.WaitGroup
}

// Start starts one loopback listener per product, serving data, and one
// AccessKey pair (Key) that requests must be signed with.
func Start(data *DataSet) (*Server, error) {
	s := &Server{
		Data:      data,
		Now:       time.Now,
		MaxSkew:   15 * time.Minute,
		keys:      map[string]AccessKey{},
		endpoints: map[string]string{},
		faults:    map[string]*Fault{},
		nonces:    map[string]time.Time{},
		limits:    map[string]*bucket{},
		closed:    make(chan struct{}),
	}
	s.AddKey(AccessKey{ID: "LTAI5tLab" + randomHex(8), Secret: randomHex(15)})
	for _, p := range Products {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("cloudlab: listen for %s: %w", p.Key, err)
		}
		hs := &http.Server{
			Handler:           s.handler(p),
			ReadHeaderTimeout: 10 * time.Second,
			ConnState: func(_ net.Conn, st http.ConnState) {
				switch st {
				case http.StateNew:
					s.conns.Add(1)
				case http.StateClosed, http.StateHijacked:
					s.conns.Add(-1)
				}
			},
		}
		s.servers = append(s.servers, hs)
		s.listeners = append(s.listeners, ln)
		s.endpoints[p.Key] = "http://" + ln.Addr().String()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = hs.Serve(ln)
		}()
	}
	return s, nil
}

// Key is the lab's default AccessKey pair.
func (s *Server) Key() AccessKey {
	for _, k := range s.keys {
		if k.Token == "" && strings.HasPrefix(k.ID, "LTAI5tLab") {
			return k
		}
	}
	return AccessKey{}
}

// AddKey makes the lab accept another key pair (e.g. an STS key with a
// token). Call it before requests are sent.
func (s *Server) AddKey(k AccessKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ID] = k
}

// Endpoint is the http://127.0.0.1:port URL of a product (ecs, vpc, pvtz).
func (s *Server) Endpoint(product string) string { return s.endpoints[product] }

// Endpoints maps every product key to its endpoint.
func (s *Server) Endpoints() map[string]string {
	out := map[string]string{}
	for k, v := range s.endpoints {
		out[k] = v
	}
	return out
}

// SetFault sets (or with a zero Fault clears) the fault of one action.
func (s *Server) SetFault(action string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Throttle != 0 && f.ThrottleCode == "" {
		f.ThrottleCode = "Throttling.User"
	}
	s.faults[action] = &f
}

// SetRateLimit makes the lab enforce a flow-control limit of qps requests
// per second (burst 1 second's worth) on an action, answering
// Throttling.User above it, as the gateway does. 0 removes it.
func (s *Server) SetRateLimit(action string, qps float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if qps <= 0 {
		delete(s.limits, action)
		return
	}
	s.limits[action] = &bucket{rate: qps, burst: max(1, qps), tokens: max(1, qps), last: s.Now()}
}

// Calls returns every request served so far (a copy).
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// ResetCalls forgets the calls served so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Inflight is the number of requests being answered now.
func (s *Server) Inflight() int64 { return s.inflight.Load() }

// OpenConns is the number of client connections open now.
func (s *Server) OpenConns() int64 { return s.conns.Load() }

// Close stops every listener and waits for the handlers to return (a
// hanging handler returns when the server closes).
func (s *Server) Close() {
	select {
	case <-s.closed:
		return
	default:
		close(s.closed)
	}
	for _, hs := range s.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = hs.Shutdown(ctx)
		cancel()
		_ = hs.Close()
	}
	s.wg.Wait()
}

// served collects the calls of every lab server of this process, so that a
// package's TestMain can check every action its tests sent.
var served struct {
	sync.Mutex
	calls []Call
}

// Served returns every call any lab server in this process has served.
func Served() []Call {
	served.Lock()
	defer served.Unlock()
	return append([]Call(nil), served.calls...)
}

// APIError is an error answer: HTTP status, Code and Message as documented.
type APIError struct {
	Status  int
	Code    string
	Message string
	// AuthAction names the RAM action a permission error is about.
	AuthAction string
}

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func missing(param string) *APIError {
	return apiErr(400, "MissingParameter", "The input parameter %q that is mandatory for processing this request is not supplied.", param)
}

func invalid(param, value string) *APIError {
	return apiErr(400, "InvalidParameter", "The specified parameter %q is not valid: %q.", param, value)
}

// Throttling and permission answers, with the codes, HTTP statuses and
// messages of the gateway.
var (
	throttleErrors = map[string]*APIError{
		"Throttling":         {Status: 400, Code: "Throttling", Message: "Request was denied due to request throttling."},
		"Throttling.User":    {Status: 400, Code: "Throttling.User", Message: "Request was denied due to user flow control."},
		"Throttling.Api":     {Status: 400, Code: "Throttling.Api", Message: "Request was denied due to api flow control."},
		"ServiceUnavailable": {Status: 503, Code: "ServiceUnavailable", Message: "The request has failed due to a temporary failure of the server."},
	}
	denyErrors = map[string]*APIError{
		"Forbidden.RAM": {Status: 403, Code: "Forbidden.RAM", Message: "User not authorized to operate on the specified resource, or this API doesn't support RAM."},
		"NoPermission":  {Status: 403, Code: "NoPermission", Message: "You are not authorized to do this operation."},
		"Forbidden":     {Status: 403, Code: "Forbidden", Message: "User not authorized to operate on the specified resource."},
	}
)

var regionRe = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)+$`)

func (s *Server) handler(p Product) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		reqID := requestID()
		c := &Call{Product: p.Key, Method: r.Method, At: s.Now()}
		body, e := s.serve(r, p, c)
		if e != nil {
			c.Status, c.Code = e.Status, e.Code
			out := map[string]any{
				"RequestId": reqID,
				"HostId":    p.Host,
				"Code":      e.Code,
				"Message":   e.Message,
				"Recommend": fmt.Sprintf("https://api.aliyun.com/troubleshoot?q=%s&product=%s&requestId=%s", e.Code, p.Name, reqID),
			}
			if e.AuthAction != "" {
				out["AccessDeniedDetail"] = map[string]any{
					"AuthAction":        e.AuthAction,
					"NoPermissionType":  "ImplicitDeny",
					"PolicyType":        "AccountLevelIdentityBasedPolicy",
					"AuthPrincipalType": "SubUser",
				}
			}
			writeJSON(w, e.Status, out)
		} else if body != nil {
			c.Status = 200
			body["RequestId"] = reqID
			writeJSON(w, 200, body)
		} else {
			// The client went away (hang, or it gave up during latency).
			c.Status, c.Code = 499, "ClientClosedRequest"
		}
		if c.Action != "" {
			s.mu.Lock()
			s.calls = append(s.calls, *c)
			s.mu.Unlock()
			served.Lock()
			served.calls = append(served.calls, *c)
			served.Unlock()
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serve checks the common parameters in the gateway's order (format,
// version, action, key, signature method, timestamp, signature, token,
// nonce), then applies the action's fault and calls its handler.
func (s *Server) serve(r *http.Request, p Product, c *Call) (map[string]any, *APIError) {
	params, e := readParams(r)
	if e != nil {
		return nil, e
	}
	c.Action = params["Action"]
	c.Params = map[string]string{}
	for k, v := range params {
		if k != "Signature" {
			c.Params[k] = v
		}
	}
	if f := params["Format"]; f != "" && !strings.EqualFold(f, "JSON") {
		// The default (no Format) is XML, which this lab does not render.
		return nil, invalid("Format", f)
	}
	if params["Format"] == "" {
		return nil, apiErr(400, "InvalidParameter", "The lab answers Format=JSON only; the default format is XML.")
	}
	switch v := params["Version"]; {
	case v == "":
		return nil, missing("Version")
	case v != p.Version:
		return nil, apiErr(400, "InvalidVersion", "Specified parameter Version is not valid.")
	}
	h, ok := actions[p.Key][c.Action]
	switch {
	case c.Action == "":
		return nil, missing("Action")
	case !ok:
		return nil, apiErr(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
	}
	id := params["AccessKeyId"]
	if id == "" {
		return nil, missing("AccessKeyId")
	}
	s.mu.Lock()
	key, ok := s.keys[id]
	s.mu.Unlock()
	if !ok {
		return nil, apiErr(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	if m := params["SignatureMethod"]; m != "HMAC-SHA1" {
		return nil, apiErr(400, "InvalidSignatureMethod", "Specified signature method %q is not supported.", m)
	}
	if v := params["SignatureVersion"]; v != "1.0" {
		return nil, apiErr(400, "InvalidSignatureVersion", "Specified signature version %q is not supported.", v)
	}
	ts := params["Timestamp"]
	if ts == "" {
		return nil, missing("Timestamp")
	}
	t, err := time.Parse("2006-01-02T15:04:05Z", ts)
	if err != nil {
		return nil, apiErr(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if d := s.Now().Sub(t); d > s.MaxSkew || d < -s.MaxSkew {
		return nil, apiErr(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	nonce := params["SignatureNonce"]
	if nonce == "" {
		return nil, missing("SignatureNonce")
	}
	if params["Signature"] == "" {
		return nil, missing("Signature")
	}
	sts := StringToSign(r.Method, params)
	if Sign(sts, key.Secret) != params["Signature"] {
		// The gateway echoes its string to sign; so does the lab, so that
		// the client's handling of this message is tested too.
		return nil, apiErr(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:%s", sts)
	}
	switch tok := params["SecurityToken"]; {
	case key.Token != "" && tok == "":
		return nil, missing("SecurityToken")
	case key.Token != "" && tok != key.Token:
		return nil, apiErr(400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken is not valid.")
	case key.Token == "" && tok != "":
		return nil, apiErr(400, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey.")
	}
	if e := s.useNonce(nonce); e != nil {
		return nil, e
	}
	if rg := params["RegionId"]; rg != "" && !regionRe.MatchString(rg) {
		return nil, apiErr(400, "InvalidRegionId.Malformed", "The specified parameter RegionId is not valid.")
	}

	s.mu.Lock()
	f := Fault{}
	if p := s.faults[c.Action]; p != nil {
		f = *p
		if p.Throttle > 0 {
			p.Throttle--
		}
	}
	limited := false
	if b := s.limits[c.Action]; b != nil {
		limited = !b.take(s.Now())
	}
	s.mu.Unlock()
	c.fault = f

	if !s.wait(r.Context(), s.Latency+f.Latency) {
		return nil, nil
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return nil, nil
	}
	if limited {
		return nil, clone(throttleErrors["Throttling.User"])
	}
	if f.Throttle != 0 {
		if e := throttleErrors[f.ThrottleCode]; e != nil {
			return nil, clone(e)
		}
		return nil, apiErr(400, f.ThrottleCode, "Request was denied due to flow control.")
	}
	if f.Deny != "" && (!f.DenyAsEmpty || params["DryRun"] == "true") {
		e := denyErrors[f.Deny]
		if e == nil {
			e = denyErrors["Forbidden.RAM"]
		}
		e = clone(e)
		e.AuthAction = strings.ToLower(p.Key) + ":" + c.Action
		return nil, e
	}
	return h(s, c)
}

func clone(e *APIError) *APIError { c := *e; return &c }

// wait sleeps d unless the client goes away or the server closes first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// useNonce rejects a nonce seen within the skew window (a replay) and
// forgets nonces older than it, so the store stays bounded.
func (s *Server) useNonce(n string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if _, seen := s.nonces[n]; seen {
		return apiErr(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	if len(s.nonces) > 10000 {
		for k, t := range s.nonces {
			if now.Sub(t) > s.MaxSkew {
				delete(s.nonces, k)
			}
		}
	}
	s.nonces[n] = now
	return nil
}

// readParams merges the query string and a form body. A parameter given
// twice is an error: RPC parameters are single-valued (lists are Name.N).
func readParams(r *http.Request) (map[string]string, *APIError) {
	out := map[string]string{}
	add := func(raw string) *APIError {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return apiErr(400, "InvalidParameter", "The request parameters cannot be parsed.")
		}
		for k, vs := range v {
			if _, dup := out[k]; dup || len(vs) != 1 {
				return apiErr(400, "InvalidParameter", "The parameter %q is given more than once.", k)
			}
			out[k] = vs[0]
		}
		return nil
	}
	if e := add(r.URL.RawQuery); e != nil {
		return nil, e
	}
	if r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, apiErr(400, "InvalidParameter", "The request body cannot be read.")
		}
		if e := add(string(b)); e != nil {
			return nil, e
		}
	}
	return out, nil
}

// bucket is a token bucket for SetRateLimit.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *bucket) take(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := strings.ToUpper(hex.EncodeToString(b))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// hidden reports whether a resource is hidden from this call by its fault.
func (c *Call) hidden(id string) bool {
	for _, h := range c.fault.Hide {
		if h == id {
			return true
		}
	}
	return false
}

// visible is what a list call answers of items: nothing when the caller
// is denied with an empty list, else the items keep accepts and no Hide
// fault hides.
func visible[T any](c *Call, items []T, id func(T) string, keep func(T) bool) []T {
	if c.deniedEmpty() {
		return nil
	}
	var out []T
	for _, x := range items {
		if !c.hidden(id(x)) && keep(x) {
			out = append(out, x)
		}
	}
	return out
}

// byID is the item of items whose ID is id, nil when none is.
func byID[T interface{ id() string }](items []T, id string) T {
	var none T
	for _, x := range items {
		if x.id() == id {
			return x
		}
	}
	return none
}

// deniedEmpty reports whether this list call answers an empty list because
// the caller lacks the permission.
func (c *Call) deniedEmpty() bool { return c.fault.Deny != "" && c.fault.DenyAsEmpty }

// dryRun answers a DryRun request: the caller may call the action (a
// DenyAsEmpty fault was already answered with its permission error).
func dryRun(c *Call) *APIError {
	if c.Params["DryRun"] == "true" {
		return apiErr(400, "DryRunOperation", "Request validation has been passed with DryRun flag set.")
	}
	if v := c.Params["DryRun"]; v != "" && v != "false" {
		return invalid("DryRun", v)
	}
	return nil
}

// ActionsServed is the sorted set of product:action names in calls.
func ActionsServed(calls []Call) []string {
	set := map[string]bool{}
	for _, c := range calls {
		set[c.Product+":"+c.Action] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var errBadToken = errors.New("bad token")
