package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/rules"
)

// Metrics are the admission figures an operator watches: how many requests,
// how they ended, how long they took.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rules    *prometheus.CounterVec
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
		rules: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_webhook_rule_findings_total",
			Help: "Rule findings in admission answers, by webhook path, rule ID (docs/rules.md) and result (denied, warning).",
		}, []string{"webhook", "rule", "result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.rules} {
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

// observeRules counts the rule IDs a response names: in a denial's message,
// and in each warning.
func (m *Metrics) observeRules(webhook string, resp admission.Response) {
	if m == nil {
		return
	}
	if !resp.Allowed && resp.Result != nil {
		for _, id := range rules.IDsIn(resp.Result.Message) {
			m.rules.WithLabelValues(webhook, string(id), ResultDenied).Inc()
		}
	}
	for _, w := range resp.Warnings {
		for _, id := range rules.IDsIn(w) {
			m.rules.WithLabelValues(webhook, string(id), "warning").Inc()
		}
	}
}
