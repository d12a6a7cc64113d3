package server

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// EventReasonConflict is the reason of the Events the audit records.
const EventReasonConflict = "SidecarConflict"

// auditor periodically looks for conflicts among existing Sidecars and
// reports each as a Warning Event on the Sidecar and in a gauge; with
// reports, it also keeps a PolicyReport per namespace with findings
// (conflicts, and Sidecars without effect). Only the leader runs it, so
// replicas do not repeat each other's Events.
type auditor struct {
	view     *informer.View
	reader   client.Reader
	recorder events.EventRecorder
	interval time.Duration
	gauge    prometheus.Gauge
	log      logr.Logger
	// reports writes PolicyReports; nil with --policy-reports=false.
	reports *policyReporter
}

func newAuditGauge(reg prometheus.Registerer) (prometheus.Gauge, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sidecar_webhook_audit_conflicting_sidecars",
		Help: "Existing Sidecars that conflict with another Sidecar (second namespace-wide Sidecar, or overlapping workloadSelectors), as of the last audit.",
	})
	return g, reg.Register(g)
}

func (a *auditor) NeedLeaderElection() bool { return true }

func (a *auditor) Start(ctx context.Context) error {
	ticker := time.NewTicker(a.interval)
	defer ticker.Stop()
	for {
		if a.view.Ready() == nil {
			a.runOnce(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func (a *auditor) runOnce(ctx context.Context) {
	findings := validation.AuditReport(a.view)
	conflicting, withoutEffect := 0, 0
	for _, f := range findings {
		if len(f.Warnings) > 0 {
			withoutEffect++
		}
		if len(f.Errors) == 0 {
			continue
		}
		conflicting++
		obj := &networkingv1.Sidecar{}
		if err := a.reader.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: f.Name}, obj); err != nil {
			continue
		}
		messages := make([]string, 0, len(f.Errors))
		for _, e := range f.Errors {
			messages = append(messages, e.Error())
		}
		a.recorder.Eventf(obj, nil, corev1.EventTypeWarning, EventReasonConflict, "Audit", "%s", eventNote(strings.Join(messages, "; ")))
	}
	a.gauge.Set(float64(conflicting))
	if a.reports != nil {
		if err := a.reports.sync(ctx, findings); err != nil {
			a.log.Error(err, "writing PolicyReports")
		}
	}
	a.log.Info("audit finished", "conflictingSidecars", conflicting, "sidecarsWithoutEffect", withoutEffect)
}

// maxEventNote is the API server's limit on an events.k8s.io Event's note.
const maxEventNote = 1024

// eventNote keeps a note within the limit, cutting at a rune boundary.
func eventNote(note string) string {
	if len(note) <= maxEventNote {
		return note
	}
	const more = " ..."
	cut := maxEventNote - len(more)
	for cut > 0 && !utf8.RuneStart(note[cut]) {
		cut--
	}
	return note[:cut] + more
}
