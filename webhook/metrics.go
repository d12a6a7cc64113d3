package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the admission figures an operator watches: how many requests,
// how they ended, how long they took.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Result labels of the requests counter.
const (
	ResultAllowed = "allowed"
	ResultDenied  = "denied"
	ResultError   = "error"
)

// NewMetrics registers the admission metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_webhook_admission_requests_total",
			Help: "Admission requests answered, by webhook path, operation and result (allowed, denied, error).",
		}, []string{"webhook", "operation", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sidecar_webhook_admission_duration_seconds",
			Help: "Time to answer an admission request, by webhook path and operation.",
			// Webhook answers are expected in milliseconds; the last buckets
			// show requests approaching the API server's timeout.
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"webhook", "operation"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(webhook, operation, result string, seconds float64) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(webhook, operation, result).Inc()
	m.duration.WithLabelValues(webhook, operation).Observe(seconds)
}
