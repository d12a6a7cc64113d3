package webhook

import (
	"context"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The paths this server answers; the webhook configurations (deploy/ and the
// dev command) point at exactly these.
const (
	ValidateSidecarsPath = "/validate/sidecars"
	MutateSidecarsPath   = "/mutate/sidecars"
	MutatePodsPath       = "/mutate/pods"
)

// Registrar is the part of controller-runtime's webhook.Server the handlers
// need; tests pass an http.ServeMux-backed one.
type Registrar interface {
	Register(path string, hook http.Handler)
}

// Handlers are the admission handlers to serve, by path.
type Handlers map[string]admission.Handler

// Register wraps each handler with panic recovery, one log line per decision
// and metrics, refuses methods other than POST, and registers it.
func Register(srv Registrar, handlers Handlers, metrics *Metrics, log logr.Logger) {
	for path, h := range handlers {
		hook := &admission.Webhook{
			Handler: &instrumented{path: path, inner: h, metrics: metrics},
		}
		// The request's identity goes into each line as it is written
		// (requestValues), not into the logger: WithValues encodes its
		// fields at once, for every request, while the production logger
		// samples most decision lines away under load.
		pathLog := log.WithValues("webhook", path)
		hook.LogConstructor = func(logr.Logger, *admission.Request) logr.Logger { return pathLog }
		srv.Register(path, postOnly(hook))
	}
}

// requestValues are the key/value pairs that identify a request in a log
// line.
func requestValues(req admission.Request, more ...any) []any {
	return append([]any{"uid", req.UID, "operation", req.Operation,
		"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
		"user", req.UserInfo.Username, "dryRun", req.DryRun != nil && *req.DryRun}, more...)
}

// postOnly answers anything but POST with 405: the API server only posts,
// and a GET with a body must not be treated as a review.
func postOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "only POST is accepted", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type instrumented struct {
	path    string
	inner   admission.Handler
	metrics *Metrics
}

func (i *instrumented) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	ctx, decision := withDecisionRecord(ctx)
	resp := i.inner.Handle(ctx, req)
	elapsed := time.Since(start)

	result := ResultAllowed
	switch {
	case resp.Result != nil && resp.Result.Code >= http.StatusInternalServerError,
		!resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusBadRequest:
		result = ResultError
	case !resp.Allowed:
		result = ResultDenied
	}
	i.metrics.observe(i.path, string(req.Operation), result, elapsed.Seconds())
	i.metrics.observeRules(i.path, resp)
	if _, decidesSidecars := i.inner.(*SidecarValidator); decidesSidecars && decision.path == "" {
		decision.path = PathLocal
	}
	if decision.path != "" {
		i.metrics.decided(decision.path, result)
	}

	// One line per decision. Object contents (denial details quote field
	// values) stay out of info level; they are logged at V(1).
	log := logr.FromContextOrDiscard(ctx)
	kv := requestValues(req, "result", result, "warnings", len(resp.Warnings), "patches", len(resp.Patches), "durationMs", float64(elapsed.Microseconds())/1000)
	if decision.path != "" {
		kv = append(kv, "decidedBy", decision.path)
	}
	if resp.Result != nil {
		kv = append(kv, "code", resp.Result.Code, "reason", resp.Result.Reason)
		if resp.Result.Details != nil {
			kv = append(kv, "causes", len(resp.Result.Details.Causes))
		}
	}
	log.Info("admission decision", kv...)
	if resp.Result != nil && resp.Result.Message != "" {
		log.V(1).Info("admission message", requestValues(req, "message", resp.Result.Message)...)
	}
	return resp
}
