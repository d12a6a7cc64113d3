package mesh

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// Where Istio keeps its mesh config: YAML under key "mesh" of ConfigMap
// "istio" (or "istio-<revision>" for a revisioned control plane) in istiod's
// namespace.
const (
	DefaultIstioNamespace = "istio-system"
	MeshConfigKey         = "mesh"
	// DefaultRootNamespace is istiod's rootNamespace when the mesh config
	// sets none.
	DefaultRootNamespace = "istio-system"
	// DefaultClusterDomain is Kubernetes' default cluster DNS domain.
	DefaultClusterDomain = "cluster.local"
)

// MeshConfigMapName is the ConfigMap holding the mesh config of a revision
// ("" for the default revision).
func MeshConfigMapName(revision string) string {
	if revision == "" || revision == "default" {
		return "istio"
	}
	return "istio-" + revision
}

// Interception modes a proxy can run with (the mesh config's
// defaultConfig.interceptionMode, or the pod annotation
// sidecar.istio.io/interceptionMode).
const (
	InterceptionRedirect = "REDIRECT"
	InterceptionTProxy   = "TPROXY"
	InterceptionNone     = "NONE"
)

// ValidInterceptionMode reports whether mode is one Istio knows.
func ValidInterceptionMode(mode string) bool {
	switch mode {
	case InterceptionRedirect, InterceptionTProxy, InterceptionNone:
		return true
	}
	return false
}

// Config is what this project reads of Istio's mesh config.
type Config struct {
	// RootNamespace is rootNamespace; "" when the mesh config sets none.
	RootNamespace string
	// InterceptionMode is defaultConfig.interceptionMode; "" when unset
	// (Istio's default is REDIRECT).
	InterceptionMode string
}

// ParseConfig reads the mesh config YAML. Unknown fields are ignored: the
// mesh config has hundreds this project does not read.
func ParseConfig(meshYAML string) (Config, error) {
	var raw struct {
		RootNamespace string `json:"rootNamespace"`
		DefaultConfig struct {
			InterceptionMode string `json:"interceptionMode"`
		} `json:"defaultConfig"`
	}
	if err := yaml.Unmarshal([]byte(meshYAML), &raw); err != nil {
		return Config{}, fmt.Errorf("reading the mesh config: %w", err)
	}
	mode := raw.DefaultConfig.InterceptionMode
	if mode != "" && !ValidInterceptionMode(mode) {
		return Config{}, fmt.Errorf("reading the mesh config: defaultConfig.interceptionMode %q is not REDIRECT, TPROXY or NONE", raw.DefaultConfig.InterceptionMode)
	}
	return Config{RootNamespace: raw.RootNamespace, InterceptionMode: mode}, nil
}

// EffectiveInterceptionMode is the interception mode of a pod's proxy: its
// annotation, else the mesh default, else REDIRECT. The injector copies the
// annotation into the proxy's metadata verbatim and istiod reads only the
// exact names (model.Proxy GetInterceptionMode), so any other value, "none"
// included, is REDIRECT.
func EffectiveInterceptionMode(podAnnotations map[string]string, meshDefault string) string {
	if mode := podAnnotations[AnnotationInterceptionMode]; mode != "" {
		if ValidInterceptionMode(mode) {
			return mode
		}
		return InterceptionRedirect
	}
	if meshDefault != "" {
		return meshDefault
	}
	return InterceptionRedirect
}
