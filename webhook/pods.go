package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
)

// The annotations this webhook owns on pods. Whatever a user writes under
// these keys is overwritten or removed: only the webhook and the annotation
// reconciler set them.
const (
	// AnnotationSidecar is the namespace/name of the Sidecar the pod's proxy
	// receives; absent when none applies.
	AnnotationSidecar = "sidecar-webhook.io/sidecar"
	// AnnotationSidecarScope is workload, namespace, mesh or none.
	AnnotationSidecarScope = "sidecar-webhook.io/sidecar-scope"
	// AnnotationSidecarConflict lists, comma-separated, the Sidecars that
	// compete for the pod; absent without a conflict.
	AnnotationSidecarConflict = "sidecar-webhook.io/sidecar-conflict"
)

// WarningViewNotReady is returned when the pod is admitted unannotated
// because the cluster view cannot be trusted yet.
const WarningViewNotReady = "sidecar-webhook: cluster view not ready; pod not annotated"

// ownedAnnotations are the keys AnnotationsFor manages.
var ownedAnnotations = []string{AnnotationSidecar, AnnotationSidecarScope, AnnotationSidecarConflict}

// AnnotationsFor returns annotations with the webhook's keys set to describe
// res (and removed where res has nothing to say); other keys are kept. The
// input is not modified. changed reports whether the result differs from
// annotations. A nil res (nothing known) removes every owned key.
func AnnotationsFor(annotations map[string]string, res *resolve.Resolution) (out map[string]string, changed bool) {
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
func ConflictMessage(res resolve.Resolution) string {
	return fmt.Sprintf("more than one Sidecar applies to this pod (%s); Istio's choice is undefined and in practice it applies %s, the oldest",
		strings.Join(res.Conflicts, ", "), res.Sidecar)
}

// PodAnnotator answers /mutate/pods: it records on each new pod which Sidecar
// its proxy will receive. The pod webhook's failurePolicy is Ignore, and this
// handler itself only refuses a pod when asked to (DenyConflicts).
type PodAnnotator struct {
	// Views returns the current cluster view, or an error while the caches
	// have not synced.
	Views func(ctx context.Context) (clusterview.View, error)
	// DenyConflicts refuses pods that several Sidecars compete for
	// (--pod-conflicts=deny) instead of admitting them with a warning.
	DenyConflicts bool
}

// Handle implements admission.Handler.
func (a *PodAnnotator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.Resource.Group != "" || req.Resource.Resource != "pods" || req.SubResource != "" {
		return admission.Allowed("")
	}
	if len(req.Object.Raw) == 0 {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("the request has no object"))
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	// The patch is computed on the generic form of the request's object, not
	// on a re-encoded corev1.Pod: fields this build does not know must not
	// turn into "remove" operations.
	var generic map[string]any
	dec := json.NewDecoder(bytes.NewReader(req.Object.Raw))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil || generic == nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("the pod is not a JSON object"))
	}
	namespace := pod.Namespace
	if namespace == "" {
		namespace = req.Namespace
	}

	var view clusterview.View
	var viewErr error
	if a.Views == nil {
		viewErr = fmt.Errorf("no cluster view configured")
	} else {
		view, viewErr = a.Views(ctx)
	}
	if viewErr != nil {
		// Never block a pod on our own readiness. Owned annotations the pod
		// brought are still dropped: a value under these keys must always
		// come from this webhook. The reconciler fills them in later.
		logr.FromContextOrDiscard(ctx).Info("pod admitted unannotated: cluster view not ready", "error", viewErr.Error())
		return patchAnnotations(req.Object.Raw, generic, pod.Annotations, nil).WithWarnings(WarningViewNotReady)
	}

	res := resolve.Resolve(view, namespace, pod.Labels)
	if len(res.Conflicts) > 0 && a.DenyConflicts {
		return admission.Denied("sidecar-webhook: " + ConflictMessage(res) +
			"; narrow the workloadSelectors so that only one selects the pod (this cluster denies such pods)")
	}
	resp := patchAnnotations(req.Object.Raw, generic, pod.Annotations, &res)
	if len(res.Conflicts) > 0 {
		resp = resp.WithWarnings("sidecar-webhook: " + ConflictMessage(res))
	}
	return resp
}

// patchAnnotations answers with the patch that brings the pod's owned
// annotations in line with res.
func patchAnnotations(raw []byte, generic map[string]any, current map[string]string, res *resolve.Resolution) admission.Response {
	desired, changed := AnnotationsFor(current, res)
	if !changed {
		return admission.Allowed("")
	}
	meta, _ := generic["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		generic["metadata"] = meta
	}
	if len(desired) == 0 {
		delete(meta, "annotations")
	} else {
		annotations := make(map[string]any, len(desired))
		for k, v := range desired {
			annotations[k] = v
		}
		meta["annotations"] = annotations
	}
	mutated, err := json.Marshal(generic)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(raw, mutated)
}
