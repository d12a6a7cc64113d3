package resolve

import "testing"

func TestAnnotationsFor(t *testing.T) {
	in := map[string]string{"a": "b", AnnotationSidecar: "x/y"}
	out, changed := AnnotationsFor(in, &Resolution{Sidecar: "x/y", Scope: ScopeNamespace})
	if !changed {
		t.Error("changed = false, want true (scope was missing)")
	}
	if in[AnnotationSidecarScope] != "" {
		t.Error("AnnotationsFor modified its input")
	}
	if _, changed := AnnotationsFor(out, &Resolution{Sidecar: "x/y", Scope: ScopeNamespace}); changed {
		t.Error("second application changed = true, want false")
	}
	if _, changed := AnnotationsFor(nil, nil); changed {
		t.Error("nothing to remove: changed = true, want false")
	}
	gone, changed := AnnotationsFor(map[string]string{AnnotationSidecarScope: "mesh", "keep": "me"}, nil)
	if !changed || len(gone) != 1 || gone["keep"] != "me" {
		t.Errorf("no proxy: got %v (changed %v), want only keep=me", gone, changed)
	}
}
