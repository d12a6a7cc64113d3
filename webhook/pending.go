package webhook

import (
	"sync"
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// PendingTTL bounds how long an admitted Sidecar counts as pending when it
// never shows up (another webhook refused it, or the request was abandoned):
// the API server stores or drops an object within its webhook timeout. One
// that shows up stops being pending at once.
const PendingTTL = 10 * time.Second

// Pending remembers the Sidecars this replica admitted in the last few
// seconds, which the cache may not show yet. Two conflicting Sidecars sent
// to one replica at the same moment are then decided one after the other
// (a lock per namespace), the second seeing the first. Across replicas the
// direct read in Cluster.Confirm is what narrows the window.
type Pending struct {
	now   func() time.Time
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	refs  map[string]map[string]pendingRef // namespace → name → ref
}

type pendingRef struct {
	ref     clusterview.SidecarRef
	expires time.Time
}

// NewPending returns an empty Pending using now as its clock.
func NewPending(now func() time.Time) *Pending {
	return &Pending{now: now, locks: map[string]*sync.Mutex{}, refs: map[string]map[string]pendingRef{}}
}

// Lock serializes admissions in one namespace; call the returned function
// to unlock.
func (p *Pending) Lock(namespace string) func() {
	p.mu.Lock()
	l, ok := p.locks[namespace]
	if !ok {
		l = &sync.Mutex{}
		p.locks[namespace] = l
	}
	p.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Add records an admitted Sidecar.
func (p *Pending) Add(ref clusterview.SidecarRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	byName := p.refs[ref.Namespace]
	if byName == nil {
		byName = map[string]pendingRef{}
		p.refs[ref.Namespace] = byName
	}
	byName[ref.Name] = pendingRef{ref: ref, expires: p.now().Add(PendingTTL)}
}

// Overlay returns view with namespace's pending Sidecars added to those the
// view already knows (a pending one replaces a stored one of the same name:
// it is the newer version).
func (p *Pending) Overlay(view clusterview.View, namespace string) clusterview.View {
	p.mu.Lock()
	defer p.mu.Unlock()
	byName := p.refs[namespace]
	if len(byName) == 0 {
		return view
	}
	// A pending Sidecar the view already shows, as admitted, is stored: from
	// now on the view speaks for it, so that deleting it is not second-
	// guessed by a stale pending entry.
	stored := map[string]map[string]string{}
	for _, ref := range view.Sidecars(namespace) {
		stored[ref.Name] = ref.Selector
	}
	now := p.now()
	var extra []clusterview.SidecarRef
	for name, pr := range byName {
		selector, isStored := stored[name]
		if now.After(pr.expires) || (isStored && sameSelector(selector, pr.ref.Selector)) {
			delete(byName, name)
			continue
		}
		extra = append(extra, pr.ref)
	}
	if len(byName) == 0 {
		// The namespace's lock stays: it may be held right now, and a
		// second lock for the same namespace would defeat it.
		delete(p.refs, namespace)
	}
	if len(extra) == 0 {
		return view
	}
	return &overlayView{View: view, namespace: namespace, extra: extra}
}

type overlayView struct {
	clusterview.View
	namespace string
	extra     []clusterview.SidecarRef
}

func (o *overlayView) Sidecars(namespace string) []clusterview.SidecarRef {
	base := o.View.Sidecars(namespace)
	if namespace != o.namespace {
		return base
	}
	replaced := map[string]bool{}
	for _, e := range o.extra {
		replaced[e.Name] = true
	}
	out := append([]clusterview.SidecarRef(nil), o.extra...)
	for _, b := range base {
		if !replaced[b.Name] {
			out = append(out, b)
		}
	}
	return out
}

// sameSelector compares selectors, telling nil (namespace-wide) from empty.
func sameSelector(a, b map[string]string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if got, ok := b[k]; !ok || got != v {
			return false
		}
	}
	return true
}
