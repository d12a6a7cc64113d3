// Package oracle answers, with Istio's own code, what istiod and Istio's
// sidecar injector do, so the project's answers can be compared with
// Istio's over many generated cluster states.
//
//   - Render / InjectorWebhooks: the injector MutatingWebhookConfigurations
//     of the istio-discovery chart, rendered by Istio's Helm code.
//   - WebhooksCalled: which of those webhooks the API server calls for a
//     pod CREATE (the API server's own ShouldCallHook).
//   - Injector / Mesh / Injected: what Istio's injector webhook answers
//     (injectRequired), combined with the webhook matching.
//   - Istiod.SidecarFor / SidecarFor: which Sidecar istiod applies to a
//     proxy (SidecarScope resolution in a real PushContext).
//   - Istiod.ListenersFor / ListenersFor: the listeners istiod builds.
//   - ValidateSidecar: Istio's Sidecar validation.
//   - LoadIstioSidecarCases: Istio's own TestValidateSidecar table, read
//     from the istio.io/istio module at run time.
//
// Istio's loggers are silenced when the package loads, because istiod's
// fakes and the injector log every call (and istiod's fake controllers log
// their start-up sync retries as errors). Set ISTIODIFF_ISTIO_LOG to a level
// (debug, info, warn, error) to see them.
package oracle

import (
	"os"

	istiolog "istio.io/istio/pkg/log"
)

func init() {
	level := istiolog.NoneLevel
	switch os.Getenv("ISTIODIFF_ISTIO_LOG") {
	case "debug":
		level = istiolog.DebugLevel
	case "info":
		level = istiolog.InfoLevel
	case "warn":
		level = istiolog.WarnLevel
	case "error":
		level = istiolog.ErrorLevel
	}
	for _, s := range istiolog.Scopes() {
		s.SetOutputLevel(level)
	}
}
