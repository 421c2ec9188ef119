package trustee

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus metrics of one trustee's API, on a registry of
// their own (never the process-wide default one, so two nodes in one
// process, as in tests and the in-process demo, do not collide).
//
// Exposed series:
//
//	keyquorum_trustee_http_requests_total{endpoint,code}   requests by route and HTTP status
//	keyquorum_trustee_decisions_total{decision,code}       decrypt decisions: granted, or refused with its refusal code
//	keyquorum_trustee_decrypt_duration_seconds              time to decide and answer one decrypt request
//	keyquorum_trustee_sessions_released_total               sessions whose partial decryptions were released
//	keyquorum_trustee_unauthenticated_total{code}           decrypt requests refused without an audit record (not signed by trusted judges, malformed or stale), and those refused for a client past its allowance
//
// No label carries request content: endpoints are the fixed route names,
// codes the fixed refusal codes.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	released  prometheus.Counter
	unauth    *prometheus.CounterVec
}

// NewMetrics returns the metrics of one trustee API on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyquorum_trustee_http_requests_total",
			Help: "HTTP requests to the trustee API, by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyquorum_trustee_decisions_total",
			Help: "Decryption requests decided, by decision (granted or refused) and refusal code (empty for grants).",
		}, []string{"decision", "code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyquorum_trustee_decrypt_duration_seconds",
			Help:    "Time to decide a decryption request and compute its partial decryptions.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14), // 0.5 ms to about 75 s
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyquorum_trustee_sessions_released_total",
			Help: "Sessions whose partial decryptions this trustee released.",
		}),
		unauth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyquorum_trustee_unauthenticated_total",
			Help: "Decrypt requests refused without an audit record, by refusal code: not signed by enough trusted judges, malformed or stale, or from a client past its allowance of those.",
		}, []string{"code"}),
	}
	m.reg.MustRegister(m.requests, m.decisions, m.latency, m.released, m.unauth)
	return m
}

// Registry returns the registry the metrics live on, so that a caller can
// add its own collectors (for example Go runtime metrics) to the same
// /metrics page.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) observeRequest(endpoint string, status int) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
}

func (m *Metrics) observeDecision(granted bool, code string, sessions int, took time.Duration) {
	m.latency.Observe(took.Seconds())
	if granted {
		m.decisions.WithLabelValues(AuditGranted, "").Inc()
		m.released.Add(float64(sessions))
		return
	}
	m.decisions.WithLabelValues(AuditRefused, code).Inc()
}

func (m *Metrics) observeUnauthenticated(code string) {
	m.unauth.WithLabelValues(code).Inc()
}
