package decider

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// The ledger serializes the decisions replicas make without the leader's
// record (a follower's fallback, a new leader's warm-up) through the API
// server: LedgerShards Leases next to the decision Lease, each holding in an
// annotation the Sidecars admitted that way in the last LedgerTTL, updated
// with optimistic concurrency (a write based on an older read fails with a
// conflict and the decision is made again). A namespace always maps to the
// same Lease, so two such decisions in one namespace cannot both miss each
// other. A fixed number of objects needs no cleanup (and no delete
// permission); entries expire.
const (
	LedgerPrefix       = "sidecar-webhook-ledger-"
	LedgerShards       = 16
	AnnotationAdmitted = "sidecar-webhook.io/admitted"
	// LedgerTTL is how long an entry counts: like webhook.PendingTTL, longer
	// than the API server takes to store or drop an admitted object.
	LedgerTTL = webhook.PendingTTL
)

// entry is one admitted Sidecar in a ledger.
type entry struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Selector is null for a namespace-wide Sidecar, {} for an empty
	// selector (which selects every workload): no omitempty.
	Selector map[string]string `json:"selector"`
	Expires  time.Time         `json:"expires"`
	// By is the identity of the replica that admitted it (for people).
	By string `json:"by,omitempty"`
}

// LedgerName is the Lease that records admissions in namespace.
func LedgerName(namespace string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(namespace))
	return fmt.Sprintf("%s%02d", LedgerPrefix, h.Sum32()%LedgerShards)
}

// decodeEntries reads a ledger's annotation; no annotation is no entry.
func decodeEntries(annotations map[string]string) ([]entry, error) {
	raw, ok := annotations[AnnotationAdmitted]
	if !ok || raw == "" {
		return nil, nil
	}
	var entries []entry
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		// Dropping what cannot be read could drop an admission: refuse.
		return nil, fmt.Errorf("annotation %s is not a list of admitted Sidecars: %w", AnnotationAdmitted, err)
	}
	return entries, nil
}

// unexpired returns the entries that still count at now.
func unexpired(entries []entry, now time.Time) []entry {
	out := make([]entry, 0, len(entries))
	for _, e := range entries {
		if now.Before(e.Expires) {
			out = append(out, e)
		}
	}
	return out
}

// withEntry returns entries with ref recorded as admitted at now by by,
// replacing an entry of the same namespace/name (the newer version).
func withEntry(entries []entry, ref clusterview.SidecarRef, now time.Time, by string) []entry {
	out := make([]entry, 0, len(entries)+1)
	for _, e := range entries {
		if e.Namespace != ref.Namespace || e.Name != ref.Name {
			out = append(out, e)
		}
	}
	var selector map[string]string
	if ref.Selector != nil {
		selector = maps.Clone(ref.Selector)
	}
	return append(out, entry{Namespace: ref.Namespace, Name: ref.Name, Selector: selector, Expires: now.Add(LedgerTTL), By: by})
}

// admittedIn returns namespace's entries as the Sidecars they stand for.
func admittedIn(entries []entry, namespace string) []clusterview.SidecarRef {
	var refs []clusterview.SidecarRef
	for _, e := range entries {
		if e.Namespace == namespace {
			refs = append(refs, clusterview.SidecarRef{Namespace: e.Namespace, Name: e.Name, Selector: e.Selector})
		}
	}
	return refs
}

// ledger reads and writes the ledger Leases.
type ledger struct {
	leases   coordinationv1client.LeaseInterface
	identity string
	now      func() time.Time
}

// reserve implements webhook.Decider.Reserve.
func (l *ledger) reserve(ctx context.Context, ref clusterview.SidecarRef, dryRun bool, decide func([]clusterview.SidecarRef) validation.Result) (validation.Result, error) {
	name := LedgerName(ref.Namespace)
	for {
		if err := ctx.Err(); err != nil {
			return validation.Result{}, err
		}
		lease, err := l.leases.Get(ctx, name, metav1.GetOptions{})
		exists := err == nil
		switch {
		case apierrors.IsNotFound(err):
			lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Labels: map[string]string{
					"app.kubernetes.io/part-of":   "sidecar-webhook",
					"app.kubernetes.io/component": "decision-ledger",
				},
			}}
		case err != nil:
			return validation.Result{}, fmt.Errorf("reading Lease %s: %w", name, err)
		}
		entries, err := decodeEntries(lease.Annotations)
		if err != nil {
			return validation.Result{}, fmt.Errorf("ledger %s: %w", name, err)
		}
		now := l.now()
		current := unexpired(entries, now)
		result := decide(admittedIn(current, ref.Namespace))
		if !result.Allowed() || dryRun {
			return result, nil
		}
		raw, err := json.Marshal(withEntry(current, ref, now, l.identity))
		if err != nil {
			return validation.Result{}, err
		}
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[AnnotationAdmitted] = string(raw)
		if exists {
			// The resourceVersion read above is the precondition.
			_, err = l.leases.Update(ctx, lease, metav1.UpdateOptions{})
		} else {
			_, err = l.leases.Create(ctx, lease, metav1.CreateOptions{})
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			continue // another replica recorded something first: decide again
		}
		if err != nil {
			return validation.Result{}, fmt.Errorf("writing Lease %s: %w", name, err)
		}
		return result, nil
	}
}
