package clusterview

import "sync"

// Memoize returns a view that asks view at most once per question and
// repeats the first answer afterwards. One admission request runs the rules
// more than once (from the cache, then after the confirming read), and each
// run asks for the same namespace's workloads and Sidecars; a memo per
// request answers the repeats without reading the cache again. A memoized
// view is a snapshot: make one per request, never keep it.
func Memoize(view View) View {
	return &memo{View: view}
}

type memo struct {
	View

	mu                  sync.Mutex
	sidecars            map[string][]SidecarRef
	workloads           map[string][]Workload
	peerAuthentications map[string][]PeerAuthentication
	rootNamespace       *string
}

// remember answers from cache, or asks once and records the answer.
func remember[T any](m *memo, cache *map[string]T, key string, ask func(string) T) T {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := (*cache)[key]; ok {
		return v
	}
	v := ask(key)
	if *cache == nil {
		*cache = map[string]T{}
	}
	(*cache)[key] = v
	return v
}

func (m *memo) Sidecars(namespace string) []SidecarRef {
	return remember(m, &m.sidecars, namespace, m.View.Sidecars)
}

func (m *memo) Workloads(namespace string) []Workload {
	return remember(m, &m.workloads, namespace, m.View.Workloads)
}

func (m *memo) PeerAuthentications(namespace string) []PeerAuthentication {
	return remember(m, &m.peerAuthentications, namespace, m.View.PeerAuthentications)
}

func (m *memo) RootNamespace() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rootNamespace == nil {
		root := m.View.RootNamespace()
		m.rootNamespace = &root
	}
	return *m.rootNamespace
}
