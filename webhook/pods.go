package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
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
	// The patch is computed on the request's own JSON, not on a re-encoded
	// typed Pod: fields this build does not know must not turn into
	// "remove" operations. Only the top level and metadata are looked at,
	// which is also what keeps this path, run on every pod start, cheap.
	doc, ok := readPodDocument(req.Object.Raw)
	if !ok {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("the pod is not a JSON object"))
	}
	var pod podMetadata
	if doc.metadata != nil {
		if err := json.Unmarshal(doc.metadata, &pod); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod's metadata: %w", err))
		}
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
		return patchAnnotations(req.Object.Raw, doc, pod.Annotations, nil).WithWarnings(WarningViewNotReady)
	}

	res := resolve.Resolve(view, namespace, pod.Labels)
	if len(res.Conflicts) > 0 && a.DenyConflicts {
		return admission.Denied("sidecar-webhook: " + ConflictMessage(res) +
			"; narrow the workloadSelectors so that only one selects the pod (this cluster denies such pods)")
	}
	resp := patchAnnotations(req.Object.Raw, doc, pod.Annotations, &res)
	if len(res.Conflicts) > 0 {
		resp = resp.WithWarnings("sidecar-webhook: " + ConflictMessage(res))
	}
	return resp
}

// podMetadata is the part of a pod's metadata the annotation reads.
type podMetadata struct {
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// podDocument is what the patch needs to know of the pod's JSON: its
// metadata and annotations exactly as sent (exact keys, unlike the
// case-insensitive typed decoding).
type podDocument struct {
	// metadata is the top-level "metadata" member; nil when absent.
	metadata json.RawMessage
	// fields are metadata's members, when metadata is a JSON object.
	fields map[string]json.RawMessage
}

// readPodDocument reads the top level of the pod's JSON; ok is false when it
// is not a JSON object. raw must be valid JSON (it decoded into a Pod):
// the members are walked without decoding them, and only metadata is
// decoded.
func readPodDocument(raw []byte) (podDocument, bool) {
	metadata, ok := topLevelMember(raw, "metadata")
	if !ok {
		return podDocument{}, false
	}
	doc := podDocument{metadata: metadata}
	if len(metadata) > 0 && metadata[0] == '{' {
		if err := json.Unmarshal(metadata, &doc.fields); err != nil {
			doc.fields = nil
		}
	}
	return doc, true
}

// topLevelMember returns the value of the last member named name (after
// unescaping, as encoding/json compares map keys) of the JSON object raw,
// nil if there is none; ok is false when raw is not an object. raw must be
// valid JSON.
func topLevelMember(raw []byte, name string) (value json.RawMessage, ok bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] == '}' {
			return value, true
		}
		if raw[i] == ',' {
			i++
			continue
		}
		keyStart := i
		i = skipString(raw, i)
		key := raw[keyStart:i]
		i = skipSpace(raw, i)
		i++ // ':'
		i = skipSpace(raw, i)
		valueStart := i
		i = skipValue(raw, i)
		if keyIs(key, name) {
			value = raw[valueStart:i]
		}
	}
}

// keyIs reports whether the quoted JSON string key is name.
func keyIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return len(key) == len(name)+2 && string(key[1:len(key)-1]) == name
	}
	var s string
	return json.Unmarshal(key, &s) == nil && s == name
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at raw[i] == '"'.
func skipString(raw []byte, i int) int {
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value starting at raw[i].
func skipValue(raw []byte, i int) int {
	if i >= len(raw) {
		return i
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				i = skipString(raw, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		// Literals and numbers end at a delimiter.
		for i < len(raw) && raw[i] != ',' && raw[i] != '}' && raw[i] != ']' &&
			raw[i] != ' ' && raw[i] != '\t' && raw[i] != '\n' && raw[i] != '\r' {
			i++
		}
		return i
	}
}

// patchAnnotations answers with the patch that brings the pod's owned
// annotations in line with res: the JSON patch operations a full-document
// diff would produce, built directly. Documents whose metadata is not the
// plain shape (metadata or annotations absent, or an object of strings
// matching the decoded pod) take the general path, a diff of the whole
// document.
func patchAnnotations(raw []byte, doc podDocument, current map[string]string, res *resolve.Resolution) admission.Response {
	desired, changed := AnnotationsFor(current, res)
	if !changed {
		return admission.Allowed("")
	}
	if ops, ok := annotationPatch(doc, current, desired); ok {
		pt := admissionv1.PatchTypeJSONPatch
		return admission.Response{
			Patches:           ops,
			AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt},
		}
	}
	return patchAnnotationsByDiff(raw, desired)
}

// annotationPatch builds the operations that turn the pod's annotations
// (current, as decoded) into desired; ok is false when the document's shape
// needs the general path.
func annotationPatch(doc podDocument, current, desired map[string]string) ([]jsonpatch.Operation, bool) {
	if doc.fields == nil {
		// metadata absent, null or not an object.
		return nil, false
	}
	annRaw, present := doc.fields["annotations"]
	if !present {
		if len(current) > 0 || len(desired) == 0 {
			return nil, false
		}
		return []jsonpatch.Operation{jsonpatch.NewOperation("add", "/metadata/annotations", genericAnnotations(desired))}, true
	}
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(annRaw, &sent); err != nil || sent == nil || len(sent) != len(current) {
		return nil, false
	}
	for k, v := range sent {
		var s string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil || s != current[k] {
			return nil, false
		}
		if _, ok := current[k]; !ok {
			return nil, false
		}
	}
	if len(desired) == 0 {
		return []jsonpatch.Operation{jsonpatch.NewOperation("remove", "/metadata/annotations", nil)}, true
	}
	var ops []jsonpatch.Operation
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
	return ops, true
}

// annotationPath is the JSON pointer (RFC 6901) of one annotation.
func annotationPath(key string) string {
	return "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

func genericAnnotations(desired map[string]string) map[string]any {
	out := make(map[string]any, len(desired))
	for k, v := range desired {
		out[k] = v
	}
	return out
}

// patchAnnotationsByDiff is the general path: the annotations are replaced
// in the generic form of the document, and the patch is the diff of the
// two documents.
func patchAnnotationsByDiff(raw []byte, desired map[string]string) admission.Response {
	var generic map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil || generic == nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("the pod is not a JSON object"))
	}
	meta, _ := generic["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		generic["metadata"] = meta
	}
	if len(desired) == 0 {
		delete(meta, "annotations")
	} else {
		meta["annotations"] = genericAnnotations(desired)
	}
	mutated, err := json.Marshal(generic)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(raw, mutated)
}
