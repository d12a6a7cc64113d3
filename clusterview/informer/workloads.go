package informer

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// maxCachedWorkloads bounds the workloads the view keeps converted, across
// namespaces (about 80 bytes each, pointing into the stores' own labels):
// the large load-benchmark state, 130k workloads, fits whole.
const maxCachedWorkloads = 1 << 18

// workloadLists keeps each namespace's workloads as last converted from the
// stores, so that a Sidecar decision does not walk eight stores and convert
// every object of its namespace on every request (the single largest cost
// of a decision in the load benchmark). An event handler on each of those
// stores bumps the namespace's generation; a list built at an older
// generation is rebuilt on the next read. client-go calls handlers after
// the store holds the change, so a list can trail the store by the time a
// notification takes to arrive: the same lag the cache already has behind
// the API server, never a lost change.
type workloadLists struct {
	mu          sync.Mutex
	generations map[string]uint64
	lists       map[string]workloadList
	cached      int
}

type workloadList struct {
	generation uint64
	workloads  []clusterview.Workload
}

func newWorkloadLists() *workloadLists {
	return &workloadLists{generations: map[string]uint64{}, lists: map[string]workloadList{}}
}

// handler invalidates the namespace of every object a store adds, updates or
// deletes.
func (l *workloadLists) handler() toolscache.ResourceEventHandler {
	changed := func(obj any) {
		if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		if o, ok := obj.(metav1.Object); ok {
			l.invalidate(o.GetNamespace())
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, obj any) { changed(obj) },
		DeleteFunc: changed,
	}
}

func (l *workloadLists) invalidate(namespace string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.generations[namespace]++
	if old, ok := l.lists[namespace]; ok {
		l.cached -= len(old.workloads)
		delete(l.lists, namespace)
	}
}

// get returns namespace's list, building it with build when the namespace
// changed since the list was built. The list is shared: callers must not
// modify it.
func (l *workloadLists) get(namespace string, build func() []clusterview.Workload) []clusterview.Workload {
	l.mu.Lock()
	generation := l.generations[namespace]
	if cached, ok := l.lists[namespace]; ok && cached.generation == generation {
		l.mu.Unlock()
		return cached.workloads
	}
	l.mu.Unlock()

	// Built outside the lock: store events keep flowing meanwhile, and one
	// that lands now makes the generation check below drop this list.
	workloads := build()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.generations[namespace] != generation {
		return workloads
	}
	if len(workloads) > maxCachedWorkloads {
		return workloads
	}
	if old, ok := l.lists[namespace]; ok {
		l.cached -= len(old.workloads)
		delete(l.lists, namespace)
	}
	// Any other namespace's list makes room: rebuilding one costs a single
	// request what every request would pay without the cache.
	for other, list := range l.lists {
		if l.cached+len(workloads) <= maxCachedWorkloads {
			break
		}
		l.cached -= len(list.workloads)
		delete(l.lists, other)
	}
	l.lists[namespace] = workloadList{generation: generation, workloads: workloads}
	l.cached += len(workloads)
	return workloads
}
