package bgp

// DropRouteStream closes the speaker's current BMP connection from the
// observer's side, as a failure would; it reports whether one was open.
func DropRouteStream(o *Observer) bool {
	o.mu.Lock()
	st := o.bmp
	o.mu.Unlock()
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.conn == nil {
		return false
	}
	st.conn.Close()
	return true
}

// RouteStreamPort is the loopback port of the observer's BMP station.
func RouteStreamPort(o *Observer) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int(o.bmp.port())
}

// WaitFor lets the external tests share the package's poll helper.
var WaitFor = waitFor

// IgnoreGoBGPServe is the goleak option for the one goroutine a stopped
// gobgp speaker leaves (see leak_test.go).
var IgnoreGoBGPServe = gobgpServe

// The evaluations, for the external tests that drive them with real
// routers' tables.
var (
	EvaluateSessions    = evalSessions
	EvaluateCloudRoutes = evalCloudRoutes
	EvaluatePodCIDRs    = evalPodCIDRs
)

// PeerPassword is the password the observer will use for peer i of a
// validated Config (from password or passwordFile).
func PeerPassword(c *Config, i int) string { return c.norm.peers[i].password }
