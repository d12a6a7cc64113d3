package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// DecideSidecarsPath is the decision leader's own endpoint: followers send it
// the AdmissionReviews of Sidecars that could start a conflict. It decides
// only while this replica leads, and never forwards again. The webhook
// configurations do not point at it.
const DecideSidecarsPath = "/decide/sidecars"

// CrossReplicaBudget bounds a decision that involves the other replicas
// (forwarding, or the fallback's direct reads and ledger write), inside the
// API server's 5 s webhook timeout: past it the answer is an error, never a
// late "allowed".
const CrossReplicaBudget = 4 * time.Second

// The paths a Sidecar decision takes: the label path of
// sidecar_webhook_sidecar_decisions_total and the decidedBy field of the
// decision log line.
const (
	// PathLocal: decided here from the cache alone, as every replica may
	// (a denial, an UPDATE that keeps its selector, a request without a
	// cluster decision), or without a decider (single replica, leader
	// election off: today's confirming read).
	PathLocal = "local"
	// PathLeader: this replica leads and decided from its cache and its
	// record of what it admitted recently, without reading the API server.
	PathLeader = "leader"
	// PathLeaderWarmup: this replica leads but has not yet shown that its
	// cache holds what the previous leader admitted; it confirmed with a
	// direct read and the ledger.
	PathLeaderWarmup = "leader-warmup"
	// PathForwarded: the leader decided; this replica passed its answer on.
	PathForwarded = "forwarded"
	// PathFallback: no leader answered within the budget; this replica
	// decided with a direct read and the ledger, and said so in a warning.
	PathFallback = "fallback"
)

// Route is how a Sidecar that could start a conflict is decided at this
// moment.
type Route struct {
	// Path is PathLeader, PathLeaderWarmup, PathForwarded, or
	// PathFallback when this replica knows of no leader (it still asks
	// Forward, which reads the Lease from the API server first).
	Path string
	// Leader is the leader's identity, for PathForwarded.
	Leader string
}

// Decider lets one replica at a time, the leader of a Lease, decide every
// Sidecar that could start a conflict (a CREATE, or an UPDATE that changes
// the selector), so that two replicas never admit a conflicting pair.
type Decider interface {
	// Route says who decides a Sidecar in namespace now.
	Route(namespace string) Route
	// Forward sends the review to the leader and returns its answer. An
	// error means no leader answered: the caller decides itself, unless the
	// error wraps ErrLeaderMayBeDeciding.
	Forward(ctx context.Context, req admission.Request, leader string) (admission.Response, error)
	// Settle returns once what a leader that stopped answering may have
	// admitted has been stored, as far as this replica can tell; a new
	// leader waits likewise for its predecessor. Usually at once.
	Settle(ctx context.Context) error
	// Reserve serializes a decision made without the leader's record
	// (fallback, warm-up) with those of every other replica, through the
	// API server: decide gets the Sidecars other replicas admitted that may
	// not be stored yet; when it admits ref, ref is recorded for the others
	// (unless dryRun) before Reserve returns. On a concurrent write decide
	// runs again with the newer record.
	Reserve(ctx context.Context, ref clusterview.SidecarRef, dryRun bool, decide func(admitted []clusterview.SidecarRef) validation.Result) (validation.Result, error)
	// Confirmed reports that a direct read of namespace's Sidecars, started
	// at readAt, found each of them in this replica's cache at the version
	// stored: as leader it no longer needs to read that namespace.
	Confirmed(namespace string, readAt time.Time)
}

// ErrLeaderMayBeDeciding: the leader did not answer, but it may still be
// deciding (it renewed its Lease a moment ago, and nothing says it stopped):
// a decision here could race one of its own, so the answer is an error.
var ErrLeaderMayBeDeciding = errors.New("the Sidecar decision leader did not answer and may still be deciding; refusing rather than racing it (retry in a few seconds)")

// errNotLeader answers DecideSidecarsPath on a replica that does not lead
// (any more): the follower that sent it decides itself.
var errNotLeader = errors.New("this replica does not lead Sidecar decisions")

// decideAcrossReplicas makes the final decision on a Sidecar that could start
// a conflict and that this replica's cache would admit: the leader decides,
// wherever the request arrived.
func (v *SidecarValidator) decideAcrossReplicas(ctx context.Context, req admission.Request, obj, old *sidecar.Sidecar, view clusterview.View, dryRun bool) admission.Response {
	// Detached from the request's cancellation like the confirming read
	// (answers in flight at shutdown are still decided properly), and
	// bounded so that no answer comes after the API server gave up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CrossReplicaBudget)
	defer cancel()
	// The lead can change between the route and the namespace's lock; a
	// second route then names the new leader.
	for range 3 {
		route := v.Decider.Route(obj.Namespace)
		switch route.Path {
		case PathLeader:
			if resp, ok := v.decideAsLeader(req, obj, old, view, dryRun); ok {
				// A denial is the cache's, as on any replica (PathLocal).
				if resp.Allowed {
					recordPath(ctx, PathLeader)
				}
				return resp
			}
		case PathLeaderWarmup:
			return v.decideConfirmed(ctx, req, obj, old, view, dryRun, PathLeaderWarmup, nil)
		default: // PathForwarded, or PathFallback: no leader this replica knows of
			if v.Internal {
				return admission.Errored(http.StatusServiceUnavailable, errNotLeader)
			}
			resp, err := v.Decider.Forward(ctx, req, route.Leader)
			if errors.Is(err, ErrLeaderMayBeDeciding) {
				recordPath(ctx, PathFallback)
				return admission.Errored(http.StatusServiceUnavailable, err)
			}
			if err == nil {
				// The leader recorded it too; recording it here as well
				// keeps this replica's own fallback from missing it should
				// the leader fail before the API server stores it.
				if resp.Allowed && !dryRun {
					v.Pending.Add(clusterview.RefOf(obj))
				}
				recordPath(ctx, PathForwarded)
				return resp
			}
			return v.decideConfirmed(ctx, req, obj, old, view, dryRun, PathFallback, err)
		}
	}
	return admission.Errored(http.StatusServiceUnavailable, errors.New("the Sidecar decision leader changed repeatedly while deciding; try again"))
}

// decideAsLeader decides from the cache and the Sidecars this replica
// admitted that the cache does not show yet; ok is false when this replica
// no longer leads once it holds the namespace's lock.
func (v *SidecarValidator) decideAsLeader(req admission.Request, obj, old *sidecar.Sidecar, view clusterview.View, dryRun bool) (admission.Response, bool) {
	unlock := v.Pending.Lock(obj.Namespace)
	defer unlock()
	if v.Decider.Route(obj.Namespace).Path != PathLeader {
		return admission.Response{}, false
	}
	result := validation.Decide(obj, old, v.Pending.Overlay(view, obj.Namespace), v.Options)
	if result.Allowed() && !dryRun {
		v.Pending.Add(clusterview.RefOf(obj))
	}
	return answer(req, result), true
}

// decideConfirmed decides without the leader's record: a new leader in its
// first seconds, or a follower no leader answered. It reads the namespace's
// Sidecars from the API server and serializes with the other replicas
// through the ledger. Whatever fails on the way, the answer is an error,
// never an unconfirmed "allowed".
func (v *SidecarValidator) decideConfirmed(ctx context.Context, req admission.Request, obj, old *sidecar.Sidecar, view clusterview.View, dryRun bool, path string, why error) admission.Response {
	recordPath(ctx, path)
	if err := v.Decider.Settle(ctx); err != nil {
		return refuse(why, fmt.Errorf("waiting for the previous leader's admissions to be stored: %w", err))
	}
	readAt := time.Now()
	confirmCtx, cancel := context.WithTimeout(ctx, ConfirmTimeout)
	confirmed, err := v.Cluster.Confirm(confirmCtx, view, obj.Namespace)
	cancel()
	if err != nil {
		return refuse(why, fmt.Errorf("could not read the namespace's Sidecars from the API server: %w", err))
	}
	unlock := v.Pending.Lock(obj.Namespace)
	defer unlock()
	base := v.Pending.Overlay(confirmed, obj.Namespace)
	ref := clusterview.RefOf(obj)
	result, err := v.Decider.Reserve(ctx, ref, dryRun, func(admitted []clusterview.SidecarRef) validation.Result {
		return validation.Decide(obj, old, withAdmitted(base, obj.Namespace, admitted), v.Options)
	})
	if err != nil {
		return refuse(why, fmt.Errorf("could not record the decision for the other replicas: %w", err))
	}
	if result.Allowed() && !dryRun {
		v.Pending.Add(ref)
	}
	if path == PathLeaderWarmup && cacheHolds(view, confirmed, obj.Namespace) {
		v.Decider.Confirmed(obj.Namespace, readAt)
	}
	if path == PathFallback {
		result.Warnings = append(result.Warnings, validation.Warning{Rule: rules.FallbackDecision, Message: fmt.Sprintf(
			"sidecar-webhook: the replica that decides Sidecars did not answer (%v); this replica decided with a direct read from the API server", why)})
	}
	return answer(req, result)
}

// refuse answers 503 when a decision without the leader could not be made
// safely: the API server's failurePolicy (Fail) then refuses the write.
func refuse(why, err error) admission.Response {
	if why != nil {
		err = fmt.Errorf("%w (and no Sidecar decision leader answered: %v)", err, why)
	}
	return admission.Errored(http.StatusServiceUnavailable, err)
}

// withAdmitted returns view with the Sidecars other replicas recorded as
// admitted in namespace counted as existing. As with Pending, one the view
// shows stored with the same selector is the stored one.
func withAdmitted(view clusterview.View, namespace string, admitted []clusterview.SidecarRef) clusterview.View {
	if len(admitted) == 0 {
		return view
	}
	stored := map[string]map[string]string{}
	for _, ref := range view.Sidecars(namespace) {
		stored[ref.Name] = ref.Selector
	}
	var extra []clusterview.SidecarRef
	for _, a := range admitted {
		if a.Namespace != namespace {
			continue
		}
		if selector, ok := stored[a.Name]; ok && sameSelector(selector, a.Selector) {
			continue
		}
		extra = append(extra, a)
	}
	if len(extra) == 0 {
		return view
	}
	return &overlayView{View: view, namespace: namespace, extra: extra}
}

// cacheHolds reports whether the cache held every Sidecar of namespace that
// the direct read found, at the version the API server stores.
func cacheHolds(cached, live clusterview.View, namespace string) bool {
	versions := map[string]string{}
	for _, ref := range cached.Sidecars(namespace) {
		versions[ref.Name] = ref.ResourceVersion
	}
	for _, ref := range live.Sidecars(namespace) {
		if ref.ResourceVersion == "" || versions[ref.Name] != ref.ResourceVersion {
			return false
		}
	}
	return true
}

// decisionKey carries the path recorder from the instrumentation into the
// handler.
type decisionKey struct{}

// decisionRecord is where a handler notes which path decided.
type decisionRecord struct{ path string }

func withDecisionRecord(ctx context.Context) (context.Context, *decisionRecord) {
	rec := &decisionRecord{}
	return context.WithValue(ctx, decisionKey{}, rec), rec
}

func recordPath(ctx context.Context, path string) {
	if rec, ok := ctx.Value(decisionKey{}).(*decisionRecord); ok {
		rec.path = path
	}
}
