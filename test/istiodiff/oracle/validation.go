package oracle

import (
	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/config/validation"
)

// ValidateSidecar runs Istio's own Sidecar validation,
// istio.io/istio/pkg/config/validation.ValidateSidecar (the validate
// function registered for Sidecar, wrapped with Istio's metadata checks),
// on spec as the Sidecar namespace/name. It returns the warning and the
// error as strings, "" when there is none.
func ValidateSidecar(namespace, name string, spec *networking.Sidecar) (warning, err string) {
	w, e := validation.ValidateSidecar(config.Config{
		Meta: config.Meta{
			GroupVersionKind: gvk.Sidecar,
			Name:             name,
			Namespace:        namespace,
		},
		Spec: spec,
	})
	if w != nil {
		warning = w.Error()
	}
	if e != nil {
		err = e.Error()
	}
	return warning, err
}
