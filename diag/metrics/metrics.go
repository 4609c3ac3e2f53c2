// Package metrics is the daemon's Prometheus face: what the last runs
// found (each check's status, each source's health and timing), the BGP
// sessions and DNS queries the sources saw, and the Go and process
// collectors, served on their own HTTP listener with the exporter-toolkit
// web configuration (TLS, client certificates, basic auth).
//
// Metrics are fed from finished runs, never by polling behind the
// registry's back: Metrics is the daemon's Observer (each periodic run's
// report, each source refresh, each reload), and Tap wraps the bgp and dns
// providers so that what they gather is observed too. State that a report carries (check
// statuses, sources, BGP sessions) is kept as the latest value and read by
// a collector on scrape; what happens per run (durations, DNS outcomes) is
// counted in histograms and counters.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const ns = "vnodediag"

// Statuses are the values of vnodediag_check_status's status label, one
// series each per check.
var Statuses = []pb.Status{pb.Status_PASS, pb.Status_WARN, pb.Status_FAIL, pb.Status_ERROR, pb.Status_SKIP}

// Metrics holds the daemon's registry and the latest state it exposes.
// Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	runs          prometheus.Counter
	lastRun       prometheus.Gauge
	runDuration   prometheus.Histogram
	checkDuration *prometheus.HistogramVec
	dnsDuration   *prometheus.HistogramVec
	dnsQueries    *prometheus.CounterVec

	reloads *prometheus.CounterVec

	mu sync.Mutex
	// refreshed: the daemon reports its sources' refreshes, which then
	// are the sources' series instead of the runs' reports.
	refreshed bool
	checks    map[string]pb.Status
	sources   map[string]*sourceState
	bgp       *bgp.Table
	// dnsServers are the servers the DNS series are about: those the
	// latest DNS gather queried.
	dnsServers map[string]bool
}

type sourceState struct {
	up          bool
	duration    time.Duration
	lastSuccess time.Time
	// health: the daemon refreshes the source and keeps its health;
	// serving is that health, reason why it is not serving.
	health, serving bool
	reason          string
}

// New returns the metrics of a daemon, with the Go and process collectors
// and vnodediag_build_info registered.
func New() *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		now:     time.Now,
		checks:  map[string]pb.Status{},
		sources: map[string]*sourceState{},
		runs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "runs_total",
			Help: "Periodic runs of the daemon finished."}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_run_timestamp_seconds",
			Help: "When the last run finished, in seconds since the epoch."}),
		runDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "run_duration_seconds",
			Help:    "Wall time of a run: gathering the sources and running the checks.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "check_duration_seconds",
			Help:    "Time one check took in a run (checks that ran; not those skipped for a missing source).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 5, 10, 30}}, []string{"check"}),
		dnsDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "dns_query_duration_seconds",
			Help:    "Round-trip time of the DNS source's queries, per server queried (a timeout counts its deadline).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"resolver"}),
		dnsQueries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "dns_queries_total",
			Help: "The DNS source's queries, per server queried and outcome."}, []string{"resolver", "outcome"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
			Help: "Configuration reloads (SIGHUP), applied or rejected (the old configuration then stays in force)."}, []string{"result"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help:        "Always 1; the labels name the build.",
		ConstLabels: prometheus.Labels{"version": diag.BuildVersion(), "goversion": runtime.Version()}})
	build.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, m.runs, m.lastRun, m.runDuration, m.checkDuration, m.dnsDuration, m.dnsQueries, m.reloads,
		stateCollector{m},
	)
	return m
}

// Registry is the registry every metric of the daemon is in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// ObserveReport records a finished periodic run: its duration, each
// check's status (the worst of its results) and duration, and each
// source's state and gather time. The report is the daemon's whole
// selection, so a check it does not hold loses its series: one a reload
// deselected, or the trimmed-report note once reports fit again (an alert
// on a stale series would fire until a restart). A source that is not
// configured is dropped.
func (m *Metrics) ObserveReport(rep *pb.Report) {
	if rep == nil {
		return
	}
	m.runs.Inc()
	end := m.now()
	if rep.GetEndTime() != nil {
		end = rep.GetEndTime().AsTime()
	}
	m.lastRun.Set(float64(end.UnixNano()) / 1e9)
	if rep.GetStartTime() != nil && rep.GetEndTime() != nil {
		m.runDuration.Observe(rep.GetEndTime().AsTime().Sub(rep.GetStartTime().AsTime()).Seconds())
	}

	status := map[string]pb.Status{}
	took := map[string]time.Duration{}
	for _, r := range rep.GetResults() {
		id := r.GetCheckId()
		if s, ok := status[id]; !ok || worse(r.GetStatus(), s) {
			status[id] = r.GetStatus()
		}
		took[id] = max(took[id], r.GetDuration().AsDuration())
	}
	for id, s := range status {
		if s != pb.Status_SKIP {
			m.checkDuration.WithLabelValues(id).Observe(took[id].Seconds())
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.checks = status
	for _, s := range rep.GetSources() {
		if m.refreshed {
			break
		}
		switch s.GetState() {
		case pb.SourceStatus_OK, pb.SourceStatus_FAILED:
		default:
			delete(m.sources, s.GetName())
			continue
		}
		st := m.sources[s.GetName()]
		if st == nil {
			st = &sourceState{}
			m.sources[s.GetName()] = st
		}
		st.up = s.GetState() == pb.SourceStatus_OK
		st.duration = s.GetDuration().AsDuration()
		if st.up {
			st.lastSuccess = end
		}
	}
}

func worse(a, b pb.Status) bool { return diag.Severity(a) > diag.Severity(b) }

// ObserveValue records what a source gathered, for the sources whose
// value says more than the report: the BGP table (sessions) and the DNS
// observations (each query). Other values are ignored.
func (m *Metrics) ObserveValue(v any) {
	switch v := v.(type) {
	case *bgp.Table:
		if v == nil {
			return
		}
		m.mu.Lock()
		m.bgp = v
		m.mu.Unlock()
	case *dnsprobe.Observations:
		if v == nil {
			return
		}
		servers := map[string]bool{}
		for q := range v.Outcomes {
			servers[q.Server] = true
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		m.dropDNSSeries(servers)
		m.dnsServers = servers
		for q, o := range v.Outcomes {
			if o == nil {
				continue
			}
			m.dnsQueries.WithLabelValues(q.Server, OutcomeLabel(o.Kind)).Inc()
			if o.Kind != dnsprobe.Interrupted {
				m.dnsDuration.WithLabelValues(q.Server).Observe(o.RTT.Seconds())
			}
		}
	}
}

// dropDNSSeries deletes the DNS series of the servers not in keep: a
// reload took them out of the configuration, and their series would stay
// until a restart. m.mu is held.
func (m *Metrics) dropDNSSeries(keep map[string]bool) {
	for s := range m.dnsServers {
		if !keep[s] {
			m.dnsQueries.DeletePartialMatch(prometheus.Labels{"resolver": s})
			m.dnsDuration.DeletePartialMatch(prometheus.Labels{"resolver": s})
		}
	}
}

// OutcomeLabel is the outcome label of a DNS query: its kind in lower
// case, words joined by "_" ("nxdomain", "connection_refused").
func OutcomeLabel(k dnsprobe.Kind) string {
	s := strings.ToLower(string(k))
	s = strings.NewReplacer(", ", "_", " ", "_").Replace(s)
	return s
}

// The daemon's Observer (diag/daemon): Metrics is one.

// RunDone records a finished periodic run (ObserveReport).
func (m *Metrics) RunDone(rep *pb.Report, _ time.Duration) { m.ObserveReport(rep) }

// SourceRefreshed records a refresh of a warm source: from the first one
// on, the sources' series follow the refreshes, which time the real
// gathers, rather than the runs' reports, which read the warm values. A
// source not configured (a reload turned its section off) has no series,
// and with the bgp source its sessions go too, with the dns source its
// resolvers' queries.
func (m *Metrics) SourceRefreshed(name diag.SourceName, err error, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshed = true
	if errors.Is(err, diag.ErrNotConfigured) {
		delete(m.sources, string(name))
		switch name {
		case bgp.Source.Name():
			m.bgp = nil
		case dnsprobe.Source.Name():
			m.dropDNSSeries(nil)
			m.dnsServers = nil
		}
		return
	}
	st := m.refreshedSource(name)
	st.up, st.duration = err == nil, d
	if err == nil {
		st.lastSuccess = m.now()
	}
}

// HealthChanged records a source's health as the daemon's grpc.health.v1
// service gives it: not serving after its last failureThreshold refreshes
// failed, with the last failure's cause (URLs already redacted by the
// daemon), cut to MaxReason bytes.
func (m *Metrics) HealthChanged(name diag.SourceName, serving bool, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if serving && m.sources[string(name)] == nil {
		// Serving again because it is no longer configured: it stays
		// without series.
		return
	}
	st := m.refreshedSource(name)
	st.serving, st.reason = serving, ""
	if !serving {
		st.reason = cutReason(reason)
	}
}

// refreshedSource is the state of a source the daemon refreshes, made on
// its first refresh or health change: serving, as the daemon starts it.
// m.mu is held.
func (m *Metrics) refreshedSource(name diag.SourceName) *sourceState {
	st := m.sources[string(name)]
	if st == nil {
		st = &sourceState{}
		m.sources[string(name)] = st
	}
	if !st.health {
		st.health, st.serving = true, true
	}
	return st
}

// MaxReason is the most bytes of a failure's cause that
// vnodediag_source_not_serving_info's reason label carries.
const MaxReason = 200

// cutReason is reason as a label value: valid UTF-8, at most MaxReason
// bytes, a cut marked with "...".
func cutReason(reason string) string {
	return diag.CutBytes(strings.ToValidUTF8(reason, "\uFFFD"), MaxReason, "...")
}

// Reloaded counts the configuration reloads, applied or rejected.
func (m *Metrics) Reloaded(err error) {
	if err != nil {
		m.reloads.WithLabelValues("rejected").Inc()
		return
	}
	m.reloads.WithLabelValues("applied").Inc()
}

// TapRunner taps each provider of r (Tap); a provider already tapped is
// left as it is, so a runner rebuilt from another one by a reload can be
// tapped again.
func (m *Metrics) TapRunner(r *diag.Runner) {
	for i, p := range r.Providers {
		r.Providers[i] = m.Tap(p)
	}
}

// Tap returns p, observing what it gathers (ObserveValue) when it is the
// bgp or the dns source; other providers are returned as they are. The
// tapped provider keeps p's Close.
func (m *Metrics) Tap(p diag.Provider) diag.Provider {
	if p == nil {
		return nil
	}
	if _, dep := p.(diag.Dependent); dep {
		return p
	}
	if _, done := p.(tapped); done {
		return p
	}
	switch p.Name() {
	case bgp.Source.Name(), dnsprobe.Source.Name():
		return tapped{Provider: p, m: m}
	}
	return p
}

type tapped struct {
	diag.Provider
	m *Metrics
}

func (t tapped) Gather(ctx context.Context) (any, error) {
	v, err := t.Provider.Gather(ctx)
	if err == nil {
		t.m.ObserveValue(v)
	}
	return v, err
}

func (t tapped) Close() {
	if c, ok := t.Provider.(interface{ Close() }); ok {
		c.Close()
	}
}

// stateCollector reads the latest state on scrape.
type stateCollector struct{ m *Metrics }

var (
	checkStatusDesc = prometheus.NewDesc(ns+"_check_status",
		"1 for the status of the check's worst result in its latest run, 0 for the other statuses.", []string{"check", "status"}, nil)
	sourceUpDesc = prometheus.NewDesc(ns+"_source_up",
		"1 if the source was gathered in its latest run, 0 if gathering it failed (sources not configured are absent).", []string{"source"}, nil)
	sourceDurationDesc = prometheus.NewDesc(ns+"_source_duration_seconds",
		"Time the latest gather of the source took.", []string{"source"}, nil)
	sourceSuccessDesc = prometheus.NewDesc(ns+"_source_last_success_timestamp_seconds",
		"When the source was last gathered without error, in seconds since the epoch.", []string{"source"}, nil)
	sourceServingDesc = prometheus.NewDesc(ns+"_source_serving",
		"The source's grpc.health.v1 status in the daemon: 1 SERVING, 0 NOT_SERVING (its last failureThreshold refreshes failed).", []string{"source"}, nil)
	sourceNotServingDesc = prometheus.NewDesc(ns+"_source_not_serving_info",
		"Always 1, while the source is NOT_SERVING: reason is the last failure's cause.", []string{"source", "reason"}, nil)
	bgpPeerDesc = prometheus.NewDesc(ns+"_bgp_peer_info",
		"Always 1: a BGP session of the observer, its name and the router's AS.", []string{"peer", "name", "asn"}, nil)
	bgpEstablishedDesc = prometheus.NewDesc(ns+"_bgp_session_established",
		"1 if the BGP session with the peer was Established in the latest run.", []string{"peer"}, nil)
	bgpUptimeDesc = prometheus.NewDesc(ns+"_bgp_session_uptime_seconds",
		"How long the session had been Established when the latest run read it (0 when it was not).", []string{"peer"}, nil)
	bgpFlapsDesc = prometheus.NewDesc(ns+"_bgp_session_flaps_total",
		"Transitions of the session out of Established since the observer started.", []string{"peer"}, nil)
	bgpReceivedDesc = prometheus.NewDesc(ns+"_bgp_received_prefixes",
		"Prefixes received on the session, per address family, in the latest run.", []string{"peer", "family"}, nil)
)

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{checkStatusDesc, sourceUpDesc, sourceDurationDesc, sourceSuccessDesc,
		sourceServingDesc, sourceNotServingDesc, bgpPeerDesc, bgpEstablishedDesc, bgpUptimeDesc, bgpFlapsDesc, bgpReceivedDesc} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for id, cur := range m.checks {
		for _, s := range Statuses {
			gauge(checkStatusDesc, b2f(s == cur), id, strings.ToLower(s.String()))
		}
	}
	for name, s := range m.sources {
		gauge(sourceUpDesc, b2f(s.up), name)
		gauge(sourceDurationDesc, s.duration.Seconds(), name)
		if !s.lastSuccess.IsZero() {
			gauge(sourceSuccessDesc, float64(s.lastSuccess.UnixNano())/1e9, name)
		}
		if s.health {
			gauge(sourceServingDesc, b2f(s.serving), name)
			if !s.serving {
				gauge(sourceNotServingDesc, 1, name, s.reason)
			}
		}
	}
	if t := m.bgp; t != nil {
		for i := range t.Peers {
			p := &t.Peers[i]
			peer := p.Address.String()
			gauge(bgpPeerDesc, 1, peer, p.Name, strconv.FormatUint(uint64(p.ASN), 10))
			gauge(bgpEstablishedDesc, b2f(p.Established()), peer)
			up := 0.0
			if p.Established() && !p.Since.IsZero() {
				taken := t.Taken
				if taken.IsZero() {
					taken = m.now()
				}
				up = max(0, taken.Sub(p.Since).Seconds())
			}
			gauge(bgpUptimeDesc, up, peer)
			ch <- prometheus.MustNewConstMetric(bgpFlapsDesc, prometheus.CounterValue, float64(p.Flaps), peer)
			for _, f := range p.Families {
				gauge(bgpReceivedDesc, float64(f.Received), peer, f.Family)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
