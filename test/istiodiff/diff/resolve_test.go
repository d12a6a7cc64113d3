package diff

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/test/istiodiff/oracle"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// resolveSidecar is one generated Sidecar: its selector is nil (no
// workloadSelector), empty (workloadSelector: {}) or labels.
type resolveSidecar struct {
	namespace, name string
	created         time.Time
	selector        map[string]string
}

type resolveState struct {
	index    int
	root     string
	sidecars []resolveSidecar
	proxies  []oracle.Proxy
}

func (s resolveState) describe(p oracle.Proxy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state #%d (root namespace %s)\n", s.index, s.root)
	// Only the Sidecars that can apply: the proxy's namespace's and the
	// root namespace's.
	n := 0
	for _, sc := range s.sidecars {
		if sc.namespace != p.Namespace && sc.namespace != s.root {
			continue
		}
		n++
		fmt.Fprintf(&b, "  Sidecar %s/%s created +%ds selector %s\n", sc.namespace, sc.name, int(sc.created.Sub(t0).Seconds()), formatLabels(sc.selector))
	}
	if n == 0 {
		fmt.Fprintf(&b, "  no Sidecars in %s or %s\n", p.Namespace, s.root)
	}
	typ := p.Type
	if typ == "" {
		typ = oracle.SidecarProxy
	}
	fmt.Fprintf(&b, "  proxy %s in %s labels %s", typ, p.Namespace, formatLabels(p.Labels))
	return b.String()
}

// selectorVocabulary is small so that equal, subset and disjoint selectors
// occur often.
var selectorVocabulary = map[string][]string{
	"app":     {"a", "b"},
	"version": {"v1", "v2"},
	"tier":    {"web", ""},
}

func genLabels(r *rand.Rand, p float64) map[string]string {
	out := map[string]string{}
	for _, k := range sortedKeys(selectorVocabulary) {
		if chance(r, p) {
			out[k] = pick(r, selectorVocabulary[k]...)
		}
	}
	return out
}

func genSelector(r *rand.Rand) map[string]string {
	switch x := r.Float64(); {
	case x < 0.35:
		return nil
	case x < 0.45:
		return map[string]string{}
	}
	for {
		if l := genLabels(r, 0.5); len(l) > 0 {
			return l
		}
	}
}

var sidecarNames = []string{"default", "a", "b", "s1", "s2", "z"}

func genSidecars(r *rand.Rand, namespace string, max int, selectors bool) []resolveSidecar {
	n := r.Intn(max + 1)
	names := slices.Clone(sidecarNames)
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	var out []resolveSidecar
	for i := 0; i < n; i++ {
		s := resolveSidecar{namespace: namespace, name: names[i], created: t0.Add(time.Duration(r.Intn(3)) * time.Second)}
		if selectors {
			s.selector = genSelector(r)
		}
		out = append(out, s)
	}
	return out
}

func genResolveState(r *rand.Rand, index int) resolveState {
	st := resolveState{index: index, root: pick(r, "istio-system", "istio-system", "istio-system", "mesh-root")}
	namespaces := []string{"app", "web", "db", st.root}
	for _, ns := range namespaces[:3] {
		st.sidecars = append(st.sidecars, genSidecars(r, ns, 5, true)...)
	}
	// The root namespace: 0-2 Sidecars, with and without selectors.
	st.sidecars = append(st.sidecars, genSidecars(r, st.root, 2, chance(r, 0.5))...)
	for _, ns := range namespaces {
		for i := 0; i < 6; i++ {
			st.proxies = append(st.proxies, oracle.Proxy{Namespace: ns, Labels: genLabels(r, 0.5)})
		}
		st.proxies = append(st.proxies,
			oracle.Proxy{Type: oracle.Router, Namespace: ns, Labels: genLabels(r, 0.5)},
			oracle.Proxy{Type: oracle.Waypoint, Namespace: ns, Labels: genLabels(r, 0.5)})
	}
	return st
}

func (s resolveState) oracleState() oracle.State {
	st := oracle.State{RootNamespace: s.root}
	for _, sc := range s.sidecars {
		spec := &networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"*/*"}}}}
		if sc.selector != nil {
			spec.WorkloadSelector = &networking.WorkloadSelector{Labels: sc.selector}
			if len(sc.selector) == 0 {
				spec.WorkloadSelector.Labels = nil
			}
		}
		st.Sidecars = append(st.Sidecars, oracle.SidecarObject{Namespace: sc.namespace, Name: sc.name, Created: sc.created, Spec: spec})
	}
	return st
}

// view builds the project's cluster view from the Sidecar objects, through
// clusterview.RefOf as the server and the offline checker do.
func (s resolveState) view() *clusterview.Memory {
	view := clusterview.NewMemory(s.root)
	for _, sc := range s.sidecars {
		obj := &sidecar.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: sc.namespace, Name: sc.name, CreationTimestamp: metav1.NewTime(sc.created)}}
		obj.Spec.Egress = []*networking.IstioEgressListener{{Hosts: []string{"*/*"}}}
		if sc.selector != nil {
			obj.Spec.WorkloadSelector = &networking.WorkloadSelector{}
			if len(sc.selector) > 0 {
				obj.Spec.WorkloadSelector.Labels = sc.selector
			}
		}
		view.PutSidecar(clusterview.RefOf(obj))
	}
	return view
}

func projectKind(t oracle.ProxyType) mesh.ProxyKind {
	switch t {
	case oracle.Router, oracle.Waypoint:
		return mesh.GatewayProxy
	}
	return mesh.SidecarProxy
}

// expectedScope is the project's scope for istiod's choice.
func (s resolveState) expectedScope(p oracle.Proxy, choice oracle.SidecarChoice) resolve.Scope {
	switch {
	case projectKind(p.Type) == mesh.GatewayProxy:
		return resolve.ScopeGateway
	case choice.Default:
		return resolve.ScopeNone
	}
	for _, sc := range s.sidecars {
		if sc.namespace == choice.Namespace && sc.name == choice.Name {
			switch {
			case sc.selector != nil:
				return resolve.ScopeWorkload
			case sc.namespace == p.Namespace:
				return resolve.ScopeNamespace
			}
			return resolve.ScopeMesh
		}
	}
	return "?"
}

func TestWhichSidecar(t *testing.T) {
	seed := seedFor(t, 2002)
	states := scaled(t, 500)
	rec := newRecorder(t, "which Sidecar istiod picks", seed)
	defer rec.finish()
	parallel(states, func(i int) {
		st := genResolveState(rand.New(rand.NewSource(seed*1_000_003+int64(i))), i)
		o, err := oracle.NewIstiod(st.oracleState())
		if err != nil {
			rec.disagree("oracle error", fmt.Sprintf("state #%d: %v", i, err))
			return
		}
		defer o.Close()
		view := st.view()
		for _, p := range st.proxies {
			choice, err := o.SidecarFor(p)
			if err != nil {
				rec.disagree("oracle error", st.describe(p)+"\n  "+err.Error())
				continue
			}
			res, ok := resolve.ForProxy(view, p.Namespace, projectKind(p.Type), p.Labels)
			ours := res.Sidecar
			if ours == "" {
				ours = "none/default"
			}
			detail := fmt.Sprintf("%s\n  project: %s (scope %s, conflicts %v)\n  istiod:  %s", st.describe(p), ours, res.Scope, res.Conflicts, choice)
			want := st.expectedScope(p, choice)
			rec.count("scope " + string(want))
			if len(res.Conflicts) > 0 {
				rec.count("with conflicts")
			}
			switch {
			case !ok:
				rec.disagree("no resolution for a proxy", detail)
			case ours != choice.String():
				if len(res.Conflicts) > 0 {
					rec.disagree("conflict: the project's pick is not istiod's", detail)
				} else {
					rec.disagree("chosen Sidecar", detail)
				}
			case res.Scope != want:
				rec.disagree("scope", detail+fmt.Sprintf("\n  expected scope %s for istiod's choice", want))
			case len(res.Conflicts) > 0 && !slices.Contains(res.Conflicts, ours):
				rec.disagree("conflicts do not list the pick", detail)
			default:
				rec.ok()
			}
		}
	})
}
