package crds

// Linking a tiny, dependency-free package of istio.io/api records the module
// and its version in the build info of every binary (and test binary) that
// uses this package, so IstioCRDs resolves the manifest of exactly that
// version without consulting go.mod at run time.
import _ "istio.io/api/label"
