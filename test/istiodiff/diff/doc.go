// Package diff holds the differential tests of the project against Istio's
// own code (the oracle package): over generated cluster states, seeded and
// deterministic, and over hand-picked cases, they compare
//
//   - whether a pod runs a proxy, and of which kind (mesh.ProxyOf against
//     Istio's injector behind the API server's webhook matching, and
//     istiod's node type for the gateways istiod deploys itself);
//   - which Sidecar a proxy receives (resolve.ForProxy against istiod's
//     SidecarScope);
//   - where egress listeners bind (defaults.Effective against the listeners
//     istiod builds);
//   - which Sidecars are admitted (the project's admission path against
//     Istio's ValidateSidecar, including Istio's own TestValidateSidecar
//     table).
//
// The package has only tests. Every disagreement is printed with the
// generated state it came from; the only differences tolerated are the
// documented ones of allowlist_test.go, each naming the project's rule.
//
// ISTIODIFF_SEED overrides the seeds (one run, other seeds than the
// committed ones) and ISTIODIFF_SCALE multiplies the number of generated
// cases (e.g. 10 for a longer hunt).
package diff
