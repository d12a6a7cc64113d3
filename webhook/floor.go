package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// FloorPath is where the benchmark floor is served when the server runs
// with --bench-floor.
const FloorPath = "/bench/floor"

// UnconfirmedBenchPath serves, with --bench-floor, the Sidecar validator
// without the confirming read (as with --confirm-reads=false), so that the
// benchmark can tell the read's cost from the rest.
const UnconfirmedBenchPath = "/bench/validate-sidecars-unconfirmed"

// Floor is the load benchmark's reference handler: it answers "allowed"
// without looking at the object. Registered like the real handlers (same
// HTTPS server, same admission.Webhook decoding of the review, same
// instrumentation and logging), it measures what every request costs before
// any rule runs, so the real handlers' figures can be read as ratios to it.
type Floor struct{}

// Handle implements admission.Handler.
func (Floor) Handle(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}
