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
		hook.LogConstructor = func(_ logr.Logger, req *admission.Request) logr.Logger {
			l := log.WithValues("webhook", path)
			if req != nil {
				l = l.WithValues("uid", req.UID, "operation", req.Operation,
					"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
					"user", req.UserInfo.Username, "dryRun", req.DryRun != nil && *req.DryRun)
			}
			return l
		}
		srv.Register(path, postOnly(hook))
	}
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

	// One line per decision. Object contents (denial details quote field
	// values) stay out of info level; they are logged at V(1).
	log := logr.FromContextOrDiscard(ctx)
	kv := []any{"result", result, "warnings", len(resp.Warnings), "patches", len(resp.Patches), "durationMs", float64(elapsed.Microseconds()) / 1000}
	if resp.Result != nil {
		kv = append(kv, "code", resp.Result.Code, "reason", resp.Result.Reason)
		if resp.Result.Details != nil {
			kv = append(kv, "causes", len(resp.Result.Details.Causes))
		}
	}
	log.Info("admission decision", kv...)
	if resp.Result != nil && resp.Result.Message != "" {
		log.V(1).Info("admission message", "message", resp.Result.Message)
	}
	return resp
}
