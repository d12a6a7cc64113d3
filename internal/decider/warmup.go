package decider

import (
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// warmup tracks, for one term as leader, the namespaces in which this
// replica may decide from its cache alone.
//
// A new leader does not know what its predecessor, or a follower deciding
// on its own, admitted a moment ago. Nothing admitted by them is in flight
// any more after WarmupFloor: the predecessor stopped deciding before this
// term began (Settle covers what it had just admitted), and a follower's own
// decision started before this term ends within its webhook budget. A direct
// read of a namespace made after the floor that finds every stored Sidecar
// in the cache, at its stored version, shows that the cache lacks nothing
// there; from then on every admission in that namespace is this leader's
// own, which its record of pending admissions covers.
//
// Namespaces are shown so either one by one (a warm-up decision's own
// confirming read) or all at once by a comparison of every stored Sidecar
// with the cache; a namespace whose versions differed in that comparison
// stays cold until a later read agrees.
type warmup struct {
	start time.Time
	// compared: a full comparison made after the floor found every
	// namespace but those in cold agreeing.
	compared bool
	cold     map[string]bool
	// confirmed are namespaces shown one by one.
	confirmed map[string]bool
}

func newWarmup(start time.Time) *warmup {
	return &warmup{start: start, cold: map[string]bool{}, confirmed: map[string]bool{}}
}

// afterFloor reports whether a read started at readAt can vouch for the
// cache.
func (w *warmup) afterFloor(readAt time.Time) bool {
	return !readAt.Before(w.start.Add(WarmupFloor))
}

// warm reports whether namespace may be decided from the cache at now.
func (w *warmup) warm(namespace string, now time.Time) bool {
	if !w.afterFloor(now) {
		return false
	}
	return w.confirmed[namespace] || (w.compared && !w.cold[namespace])
}

// done reports whether every namespace is warm.
func (w *warmup) done() bool { return w.compared && len(w.cold) == 0 }

// confirm records that a read of namespace started at readAt agreed.
func (w *warmup) confirm(namespace string, readAt time.Time) {
	if !w.afterFloor(readAt) {
		return
	}
	w.confirmed[namespace] = true
	delete(w.cold, namespace)
}

// comparedAll records a full comparison started at readAt, in which the
// namespaces in disagree did not agree. A namespace warm before stays warm:
// what the cache lacks there now can only be this leader's own admissions.
func (w *warmup) comparedAll(readAt time.Time, disagree map[string]bool) {
	if !w.afterFloor(readAt) {
		return
	}
	if !w.compared {
		w.compared = true
		for ns := range disagree {
			if !w.confirmed[ns] {
				w.cold[ns] = true
			}
		}
		return
	}
	for ns := range w.cold {
		if !disagree[ns] {
			delete(w.cold, ns)
		}
	}
}

// storedSidecar is a Sidecar as a metadata-only list of the API server
// shows it.
type storedSidecar struct {
	Namespace, Name, ResourceVersion string
}

// disagreeing returns the namespaces in which some stored Sidecar is missing
// from the cache, or cached at another version. The cache may hold more
// (a Sidecar deleted a moment ago): that only makes its decisions stricter.
func disagreeing(stored []storedSidecar, cached func(namespace string) []clusterview.SidecarRef) map[string]bool {
	byNamespace := map[string]map[string]string{}
	out := map[string]bool{}
	for _, s := range stored {
		versions, ok := byNamespace[s.Namespace]
		if !ok {
			versions = map[string]string{}
			for _, ref := range cached(s.Namespace) {
				versions[ref.Name] = ref.ResourceVersion
			}
			byNamespace[s.Namespace] = versions
		}
		if s.ResourceVersion == "" || versions[s.Name] != s.ResourceVersion {
			out[s.Namespace] = true
		}
	}
	return out
}
