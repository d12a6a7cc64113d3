package resolve

import (
	"fmt"
	"maps"
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// The pod annotations this project owns. Whatever a user writes under these
// keys is overwritten or removed: only the pod webhook and the annotation
// reconciler set them, and only on pods that run a proxy.
const (
	// AnnotationSidecar is the namespace/name of the Sidecar the pod's proxy
	// receives; absent when none applies.
	AnnotationSidecar = clusterview.OwnAnnotationPrefix + "sidecar"
	// AnnotationSidecarScope is workload, namespace, mesh, none or gateway.
	AnnotationSidecarScope = clusterview.AnnotationSidecarScope
	// AnnotationSidecarConflict lists, comma-separated, the Sidecars that
	// compete for the pod; absent without a conflict.
	AnnotationSidecarConflict = clusterview.OwnAnnotationPrefix + "sidecar-conflict"
)

// ownedAnnotations are the keys AnnotationsFor manages.
var ownedAnnotations = []string{AnnotationSidecar, AnnotationSidecarScope, AnnotationSidecarConflict}

// AnnotationsFor returns annotations with the owned keys set to describe res
// (and removed where res has nothing to say); other keys are kept. The input
// is not modified. changed reports whether the result differs from
// annotations. A nil res (no proxy, or nothing known) removes every owned
// key.
func AnnotationsFor(annotations map[string]string, res *Resolution) (out map[string]string, changed bool) {
	out = maps.Clone(annotations)
	if out == nil {
		out = map[string]string{}
	}
	for _, k := range ownedAnnotations {
		delete(out, k)
	}
	if res != nil {
		out[AnnotationSidecarScope] = string(res.Scope)
		if res.Sidecar != "" {
			out[AnnotationSidecar] = res.Sidecar
		}
		if len(res.Conflicts) > 0 {
			out[AnnotationSidecarConflict] = strings.Join(res.Conflicts, ",")
		}
	}
	for _, k := range ownedAnnotations {
		before, hadBefore := annotations[k]
		after, hasAfter := out[k]
		if hadBefore != hasAfter || before != after {
			return out, true
		}
	}
	return out, false
}

// ConflictMessage describes a conflict for a warning or a denial.
func ConflictMessage(res Resolution) string {
	return fmt.Sprintf("more than one Sidecar applies to this pod (%s); Istio's choice is undefined and in practice it applies %s, the oldest",
		strings.Join(res.Conflicts, ", "), res.Sidecar)
}
