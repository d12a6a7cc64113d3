package webhook

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
)

// WarningViewNotReady is returned when the pod is admitted unannotated
// because the cluster view cannot be trusted yet.
const WarningViewNotReady = "sidecar-webhook: cluster view not ready; pod not annotated"

// PodAnnotator answers /mutate/pods: it records on each new pod that runs an
// Istio proxy which Sidecar the proxy will receive (resolve.AnnotationsFor).
// The pod webhook's failurePolicy is Ignore, and this handler itself only
// refuses a pod when asked to (DenyConflicts).
type PodAnnotator struct {
	// Views returns the current cluster view, or an error while the caches
	// have not synced.
	Views func(ctx context.Context) (clusterview.View, error)
	// DenyConflicts refuses pods that several Sidecars compete for
	// (--pod-conflicts=deny) instead of admitting them with a warning.
	DenyConflicts bool
}

// admittedPod is what the annotation reads of a pod: its metadata, whether
// metadata is there at all (it decides the patch's shape), and
// spec.hostNetwork (such pods are never injected).
type admittedPod struct {
	Metadata *struct {
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		HostNetwork bool `json:"hostNetwork"`
	} `json:"spec"`
}

// Handle implements admission.Handler.
func (a *PodAnnotator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.Resource.Group != "" || req.Resource.Resource != "pods" || req.SubResource != "" {
		return admission.Allowed("")
	}
	if len(req.Object.Raw) == 0 {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("the request has no object"))
	}
	// Field names are matched exactly, as the API server writes them: the
	// patch addresses /metadata/annotations, so a case-insensitive match
	// could patch a member that is not there.
	var pod admittedPod
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	hasMetadata := pod.Metadata != nil
	if !hasMetadata {
		pod.Metadata = &struct {
			Namespace   string            `json:"namespace"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		}{}
	}
	meta := pod.Metadata
	namespace := meta.Namespace
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
		logr.FromContextOrDiscard(ctx).Info("pod admitted unannotated: cluster view not ready", requestValues(req, "error", viewErr.Error())...)
		return annotationPatch(hasMetadata, meta.Annotations, nil).WithWarnings(WarningViewNotReady)
	}

	// Istio's injector, when installed, has already run: its configurations
	// sort before this project's.
	proxy := mesh.ProxyOf(view.Injectors(), view.NamespaceLabels(namespace), mesh.Workload{
		Namespace: namespace, Labels: meta.Labels, Annotations: meta.Annotations,
		HostNetwork: pod.Spec.HostNetwork, Stage: mesh.StageAdmission,
	})
	res, hasProxy := resolve.ForProxy(view, namespace, proxy.Kind, meta.Labels)
	if !hasProxy {
		return annotationPatch(hasMetadata, meta.Annotations, nil)
	}
	if len(res.Conflicts) > 0 && a.DenyConflicts {
		return admission.Denied("sidecar-webhook: " + resolve.ConflictMessage(res) +
			"; narrow the workloadSelectors so that only one selects the pod (this cluster denies such pods)")
	}
	resp := annotationPatch(hasMetadata, meta.Annotations, &res)
	if len(res.Conflicts) > 0 {
		resp = resp.WithWarnings("sidecar-webhook: " + resolve.ConflictMessage(res))
	}
	return resp
}

// annotationPatch answers with the JSON patch that brings the pod's owned
// annotations (current, as sent) in line with res, touching nothing else.
func annotationPatch(hasMetadata bool, current map[string]string, res *resolve.Resolution) admission.Response {
	desired, changed := resolve.AnnotationsFor(current, res)
	if !changed {
		return admission.Allowed("")
	}
	var ops []jsonpatch.Operation
	switch {
	case !hasMetadata:
		ops = []jsonpatch.Operation{jsonpatch.NewOperation("add", "/metadata", map[string]any{"annotations": desired})}
	case current == nil:
		// Absent or null: "add" sets the member either way.
		ops = []jsonpatch.Operation{jsonpatch.NewOperation("add", "/metadata/annotations", desired)}
	default:
		for _, k := range slices.Sorted(maps.Keys(desired)) {
			before, had := current[k]
			switch {
			case !had:
				ops = append(ops, jsonpatch.NewOperation("add", annotationPath(k), desired[k]))
			case before != desired[k]:
				ops = append(ops, jsonpatch.NewOperation("replace", annotationPath(k), desired[k]))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(current)) {
			if _, keep := desired[k]; !keep {
				ops = append(ops, jsonpatch.NewOperation("remove", annotationPath(k), nil))
			}
		}
	}
	pt := admissionv1.PatchTypeJSONPatch
	return admission.Response{Patches: ops, AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt}}
}

// annotationPath is the JSON pointer (RFC 6901) of one annotation.
func annotationPath(key string) string {
	return "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}
