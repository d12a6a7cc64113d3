// Package webhook is the thin HTTP layer: it decodes admission requests, calls
// the pure code in validation and defaults, and turns the result into an
// admission response (status, warnings, JSON patch). It holds no rules.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// ConfirmTimeout bounds the direct read from the API server, well inside the
// webhook's own timeout.
const ConfirmTimeout = time.Second

// MaxReportedWarnings caps the warnings likewise; the API server also limits
// the size of warning headers.
const MaxReportedWarnings = 25

// Cluster gives the Sidecar validator the cluster state to decide against.
type Cluster interface {
	// View returns the current cached view, or an error while it cannot be
	// trusted (before the caches have synced).
	View(ctx context.Context) (clusterview.View, error)
	// Confirm returns view with namespace's Sidecars as the API server has
	// them now, read directly, bypassing the cache, to close the window in
	// which two replicas admit two conflicting Sidecars.
	Confirm(ctx context.Context, view clusterview.View, namespace string) (clusterview.View, error)
}

// SidecarValidator answers /validate/sidecars.
type SidecarValidator struct {
	// Cluster is nil when only per-object rules apply (offline use, tests).
	Cluster Cluster
	// Pending, if set, closes the race between two conflicting Sidecars
	// sent to this replica at the same moment.
	Pending *Pending
	Options validation.Options

	// Decider, if set (with Pending and Cluster), has one replica decide
	// every Sidecar that could start a conflict (see decider.go); without
	// it this replica decides alone, with the confirming read.
	Decider Decider
	// Internal marks the handler of DecideSidecarsPath: it decides only
	// while this replica leads, and never forwards.
	Internal bool
}

// Handle implements admission.Handler.
func (v *SidecarValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if resp, done := checkSidecarRequest(req); done {
		return resp
	}
	obj, errs := sidecar.Decode(req.Object.Raw)
	if len(errs) > 0 {
		return denyInvalid(requestName(req), errs, nil)
	}
	fillIdentity(obj, req)
	old := oldSidecar(req, obj)

	var view clusterview.View
	if v.Cluster != nil {
		cached, err := v.Cluster.View(ctx)
		if err != nil {
			// Never "allowed" on a view we cannot trust: the API server's
			// failurePolicy decides what the user sees.
			return admission.Errored(http.StatusServiceUnavailable, err)
		}
		// The rules may run twice below and ask the same questions each
		// time: read the cache once per question.
		view = clusterview.Memoize(cached)
	}
	dryRun := req.DryRun != nil && *req.DryRun
	overlay := func(view clusterview.View) clusterview.View {
		if v.Pending == nil || view == nil {
			return view
		}
		return v.Pending.Overlay(view, obj.Namespace)
	}
	if view == nil {
		// Per-object rules only.
		result := validation.Decide(obj, old, nil, v.Options)
		return answer(req, result)
	}

	decideFrom := view
	var confirmErr error
	// An UPDATE that keeps its selector cannot start a conflict, so the
	// cache decides it alone (most GitOps syncs: new listeners, labels,
	// annotations).
	if old == nil || !sidecar.SameSelector(old, obj) {
		// The decision leader decides once, from this same cache, under the
		// namespace's lock: a first look without the lock would only ask
		// the same questions twice.
		if v.Decider != nil && v.Pending != nil && v.Decider.Route(obj.Namespace).Path == PathLeader {
			return v.decideAcrossReplicas(ctx, req, obj, old, view, dryRun)
		}
		// First from the cache: most denials need nothing more.
		if result := validation.Decide(obj, old, overlay(view), v.Options); !result.Allowed() {
			return answer(req, result)
		}
		if v.Decider != nil && v.Pending != nil {
			return v.decideAcrossReplicas(ctx, req, obj, old, view, dryRun)
		}
		// Every Sidecar falls under a uniqueness rule. The cache may lag
		// a Sidecar admitted a moment ago by another replica: re-read this
		// namespace's Sidecars from the API server before saying yes.
		// Detached from the request's cancellation: on SIGTERM the server
		// cancels in-flight requests, yet it still finishes answering them,
		// and those answers should be confirmed like any other.
		confirmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ConfirmTimeout)
		confirmed, err := v.Cluster.Confirm(confirmCtx, view, obj.Namespace)
		cancel()
		if err != nil {
			// The API server is slow or unreachable from here: decide from
			// the cache (at most a moment behind while the API server
			// answers, and all there is when it does not) and say so.
			confirmErr = err
		} else {
			decideFrom = confirmed
		}
	}
	// The final decision and recording it as pending happen under the
	// namespace's lock, so two admissions in one namespace see each other;
	// the slow read above stays outside it.
	if v.Pending != nil {
		unlock := v.Pending.Lock(obj.Namespace)
		defer unlock()
	}
	result := validation.Decide(obj, old, overlay(decideFrom), v.Options)
	if confirmErr != nil {
		result.Warnings = append(result.Warnings, validation.Warning{Rule: rules.UnconfirmedDecision, Message: fmt.Sprintf(
			"sidecar-webhook could not confirm the namespace's Sidecars with the API server (%v); decided from its cache", confirmErr)})
	}
	// A dry run stores nothing, so it must leave no trace either.
	if result.Allowed() && v.Pending != nil && !dryRun {
		v.Pending.Add(clusterview.RefOf(obj))
	}
	return answer(req, result)
}

// answer turns a decision into the admission response.
func answer(req admission.Request, result validation.Result) admission.Response {
	if !result.Allowed() {
		return denyInvalid(requestName(req), result.Errors, result.Warnings)
	}
	return admission.Allowed("").WithWarnings(limitWarnings(result.Warnings)...)
}

// oldSidecar is the stored object of an UPDATE, which ratcheting compares
// against, or nil: on CREATE, and when the old object cannot be decoded (the
// update is then judged as a CREATE, as before ratcheting existed).
func oldSidecar(req admission.Request, obj *sidecar.Sidecar) *sidecar.Sidecar {
	if req.Operation != admissionv1.Update || len(req.OldObject.Raw) == 0 {
		return nil
	}
	old, errs := sidecar.Decode(req.OldObject.Raw)
	if len(errs) > 0 {
		return nil
	}
	// Ratcheting and the conflict rules compare by namespace/name, which
	// an UPDATE cannot change.
	old.Namespace, old.Name = obj.Namespace, obj.Name
	return old
}

// SidecarDefaulter answers /mutate/sidecars.
type SidecarDefaulter struct {
	// Options carry the cluster's IP family (--ip-family).
	Options defaults.Options
}

// Handle implements admission.Handler.
func (d *SidecarDefaulter) Handle(_ context.Context, req admission.Request) admission.Response {
	if resp, done := checkSidecarRequest(req); done {
		return resp
	}
	// Decode first so a malformed object is refused with field paths here,
	// rather than defaulted.
	if _, errs := sidecar.Decode(req.Object.Raw); len(errs) > 0 {
		return denyInvalid(requestName(req), errs, nil)
	}
	var obj map[string]any
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	changes, notes := defaults.Apply(obj, d.Options)
	warnings := make([]string, 0, len(notes))
	for _, n := range notes {
		warnings = append(warnings, validation.Warning{Rule: n.Rule, Path: field.NewPath(n.Path), Message: n.Message}.String())
	}
	if len(changes) == 0 {
		return admission.Allowed("").WithWarnings(warnings...)
	}
	mutated, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated).WithWarnings(warnings...)
}

// checkSidecarRequest answers the requests that need no decision: a resource
// this endpoint does not handle, deletes, and requests without an object.
func checkSidecarRequest(req admission.Request) (admission.Response, bool) {
	gvr := schema.GroupVersionResource{Group: req.Resource.Group, Version: req.Resource.Version, Resource: req.Resource.Resource}
	if !sidecar.IsServedGVR(gvr) {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf(
			"this endpoint handles %s/%s (%v), not %q", sidecar.Group, sidecar.Resource, sidecar.ServedVersions, gvr.String())), true
	}
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	case admissionv1.Delete, admissionv1.Connect:
		return admission.Allowed(""), true
	default:
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("unknown operation %q", req.Operation)), true
	}
	if len(req.Object.Raw) == 0 {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("the request has no object")), true
	}
	return admission.Response{}, false
}

// fillIdentity makes the decoded object's identity match the request: a
// Sidecar created with generateName or without a namespace in its body gets
// them from the request, as the API server will store it.
func fillIdentity(obj *sidecar.Sidecar, req admission.Request) {
	if obj.Namespace == "" {
		obj.Namespace = req.Namespace
	}
	if obj.Name == "" {
		obj.Name = req.Name
	}
}

func requestName(req admission.Request) string {
	if req.Name != "" {
		return req.Name
	}
	return "<generated>"
}

// denyInvalid answers with validation.DenialStatus, the project's one error
// contract, plus any warnings gathered on the way.
func denyInvalid(name string, errs field.ErrorList, warnings validation.Warnings) admission.Response {
	status := validation.DenialStatus(name, errs)
	return admission.Response{
		AdmissionResponse: admissionv1.AdmissionResponse{
			Allowed:  false,
			Result:   &status,
			Warnings: limitWarnings(warnings),
		},
	}
}

func limitWarnings(ws validation.Warnings) []string {
	out := ws.Strings()
	if len(out) > MaxReportedWarnings {
		more := len(out) - MaxReportedWarnings
		out = append(out[:MaxReportedWarnings], fmt.Sprintf("and %d more warnings not shown", more))
	}
	return out
}
