// Package clusterview is the read-only picture of cluster state that the
// cross-object rules (validation) and pod resolution read. The server fills it
// from informers, the offline checker from files, tests from literals; the
// rules never know which.
package clusterview

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// SidecarRef is what the cross-object rules need to know about an existing
// Sidecar: identity, age (Istio's tie-breaker) and its selector.
type SidecarRef struct {
	Namespace string
	Name      string
	// Created orders Sidecars the way Istio does when several apply: oldest
	// first, then by name.
	Created time.Time
	// Selector is nil for a namespace-wide Sidecar (no workloadSelector).
	Selector map[string]string
	// ResourceVersion identifies the stored version, when known; the
	// confirming read uses it to tell a current cache entry from a stale one.
	ResourceVersion string
}

// Key is the namespace/name of the Sidecar.
func (s SidecarRef) Key() string { return s.Namespace + "/" + s.Name }

// Workload is anything a workloadSelector can select: a Pod, a WorkloadEntry,
// or the pod template of a workload controller (so a conflict is caught before
// any pod exists).
type Workload struct {
	// Kind is Pod, WorkloadEntry, Deployment, StatefulSet, DaemonSet, Job,
	// CronJob or ReplicaSet.
	Kind      string
	Namespace string
	Name      string
	Labels    map[string]string
}

// SortWorkloads orders workloads by kind, then namespace and name: the order
// in which messages name them.
func SortWorkloads(ws []Workload) {
	slices.SortFunc(ws, func(a, b Workload) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
}

// String names the workload for denial messages: "Deployment prod/ratings".
func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// PeerAuthentication is the part of an Istio PeerAuthentication that decides
// whether a custom ingress TLS listener can work: mutual TLS must be disabled
// for its port.
type PeerAuthentication struct {
	Namespace string
	Name      string
	// Selector is nil for a namespace-wide (or, in the root namespace,
	// mesh-wide) policy.
	Selector map[string]string
	// Mode is the policy-level mTLS mode (UNSET, DISABLE, PERMISSIVE, STRICT).
	Mode string
	// PortModes maps a port number to its port-level mTLS mode.
	PortModes map[uint32]string
}

// View is the cluster state the rules read. Implementations must be safe for
// concurrent use and must return data the caller may not modify.
type View interface {
	// RootNamespace is the mesh root namespace (Istio's rootNamespace).
	RootNamespace() string
	// Sidecars lists the Sidecars in a namespace.
	Sidecars(namespace string) []SidecarRef
	// Workloads lists the selectable workloads in a namespace, in no
	// particular order (see SortWorkloads).
	Workloads(namespace string) []Workload
	// Namespaces lists every namespace, sorted.
	Namespaces() []string
	// NamespaceExists reports whether a namespace exists.
	NamespaceExists(namespace string) bool
	// NamespaceLabels returns a namespace's labels (nil if it does not exist).
	NamespaceLabels(namespace string) map[string]string
	// HostExists reports whether an exact host name is provided by a Service
	// (as name.namespace.svc.<domain>, or a shorter form of it) or a
	// ServiceEntry host visible from namespace fromNamespace. namespace "*"
	// means any namespace.
	HostExists(namespace, host, fromNamespace string) bool
	// PeerAuthentications lists the PeerAuthentications in a namespace.
	PeerAuthentications(namespace string) []PeerAuthentication
}
