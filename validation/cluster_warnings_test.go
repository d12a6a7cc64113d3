package validation

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

func clusterNamespaces(names ...string) conflictFixture {
	return func(m *clusterview.Memory) {
		for _, n := range names {
			m.EnsureNamespace(n)
		}
	}
}

func clusterService(ns, name string) conflictFixture {
	return func(m *clusterview.Memory) {
		m.AddService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	}
}

func clusterServiceEntry(ns, name string, hosts []string, exportTo ...string) conflictFixture {
	return func(m *clusterview.Memory) {
		m.AddServiceEntry(&networkingv1.ServiceEntry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       networkingv1alpha3.ServiceEntry{Hosts: hosts, ExportTo: exportTo},
		})
	}
}

// clusterPeerAuth adds a PeerAuthentication with a policy-level mode and
// port-level modes given as port → mode. selector nil means namespace-wide.
func clusterPeerAuth(ns, name string, selector map[string]string, mode string, ports map[uint32]string) conflictFixture {
	toMTLS := func(m string) *securityv1beta1.PeerAuthentication_MutualTLS {
		return &securityv1beta1.PeerAuthentication_MutualTLS{
			Mode: securityv1beta1.PeerAuthentication_MutualTLS_Mode(securityv1beta1.PeerAuthentication_MutualTLS_Mode_value[m]),
		}
	}
	return func(m *clusterview.Memory) {
		pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if selector != nil {
			pa.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: selector}
		}
		if mode != "" {
			pa.Spec.Mtls = toMTLS(mode)
		}
		for port, portMode := range ports {
			if pa.Spec.PortLevelMtls == nil {
				pa.Spec.PortLevelMtls = map[uint32]*securityv1beta1.PeerAuthentication_MutualTLS{}
			}
			pa.Spec.PortLevelMtls[port] = toMTLS(portMode)
		}
		m.AddPeerAuthentication(pa)
	}
}

// clusterEgress gives a test Sidecar one egress listener per host list.
func clusterEgress(hostLists ...[]string) conflictSidecarOpt {
	return func(s *sidecar.Sidecar) {
		for _, hosts := range hostLists {
			s.Spec.Egress = append(s.Spec.Egress, &networkingv1alpha3.IstioEgressListener{Hosts: hosts})
		}
	}
}

// clusterIngress gives a test Sidecar one ingress listener per port; a port
// listed in tlsPorts terminates TLS with custom settings.
func clusterIngress(ports []uint32, tlsPorts ...uint32) conflictSidecarOpt {
	return func(s *sidecar.Sidecar) {
		for _, p := range ports {
			l := &networkingv1alpha3.IstioIngressListener{
				Port:            &networkingv1alpha3.SidecarPort{Number: p, Protocol: "HTTP", Name: "p"},
				DefaultEndpoint: "127.0.0.1:8080",
			}
			for _, tp := range tlsPorts {
				if tp == p {
					l.Port.Protocol = "HTTPS"
					l.Tls = &networkingv1alpha3.ServerTLSSettings{
						Mode:              networkingv1alpha3.ServerTLSSettings_SIMPLE,
						ServerCertificate: "/etc/certs/servercert.pem",
						PrivateKey:        "/etc/certs/privatekey.pem",
					}
				}
			}
			s.Spec.Ingress = append(s.Spec.Ingress, l)
		}
	}
}

func TestClusterWarningsEgressHosts(t *testing.T) {
	base := []conflictFixture{
		clusterNamespaces("prod", "istio-system", "ns1"),
		clusterService("prod", "ratings"),
		clusterServiceEntry("ns1", "external-svc-mysql", []string{"mysql.foo.com"}),
		clusterServiceEntry("ns1", "private", []string{"private.foo.com"}, "."),
	}
	tests := []struct {
		name  string
		hosts []string
		want  []string
	}{
		{name: "wildcards in existing namespaces", hosts: []string{"./*", "istio-system/*", "prod/*.example.com"}},
		{name: "any and no namespace", hosts: []string{"*/*", "~/*"}},
		{name: "missing namespace", hosts: []string{"prod/*", "prod-apis/*"}, want: []string{"spec.egress[0].hosts[1]"}},
		{name: "missing namespace with an exact host warns once", hosts: []string{"prod-apis/api.prod-apis.svc.cluster.local"}, want: []string{"spec.egress[0].hosts[0]"}},
		{name: "service host in its namespace", hosts: []string{"prod/ratings.prod.svc.cluster.local", "./ratings.prod.svc"}},
		{name: "service host in the wrong namespace", hosts: []string{"ns1/ratings.prod.svc.cluster.local"}, want: []string{"spec.egress[0].hosts[0]"}},
		{name: "unknown service host", hosts: []string{"./reviews.prod.svc.cluster.local"}, want: []string{"spec.egress[0].hosts[0]"}},
		{name: "service entry from any namespace", hosts: []string{"*/mysql.foo.com", "ns1/mysql.foo.com"}},
		{name: "service entry not exported to the Sidecar's namespace", hosts: []string{"*/private.foo.com"}, want: []string{"spec.egress[0].hosts[0]"}},
		{name: "unknown external host", hosts: []string{"*/mysql.bar.com"}, want: []string{"spec.egress[0].hosts[0]"}},
		{name: "malformed hosts are left to per-object rules", hosts: []string{"mysql.foo.com", "/x", "prod/", "a/b/c"}},
		{name: "exclusions of what exists", hosts: []string{"*/*", "~prod/*", "~/*", "~ns1/mysql.foo.com", "~/ratings.prod.svc.cluster.local"}},
		{name: "an exclusion in a missing namespace excludes nothing", hosts: []string{"*/*", "~prod-apis/*"}, want: []string{"spec.egress[0].hosts[1]"}},
		{name: "an exclusion of a host nobody provides excludes nothing", hosts: []string{"*/*", "~/mysql.bar.com"}, want: []string{"spec.egress[0].hosts[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := conflictTestSidecar("prod", "default", nil, clusterEgress(tt.hosts))
			got := ClusterWarnings(s, conflictView(base...))
			if diff := cmp.Diff(tt.want, conflictWarningPaths(got)); diff != "" {
				t.Errorf("warning paths (-want +got):\n%s\n%v", diff, got.Strings())
			}
		})
	}

	t.Run("paths index listeners and hosts", func(t *testing.T) {
		s := conflictTestSidecar("prod", "default", nil, clusterEgress([]string{"./*"}, []string{"istio-system/*", "gone/*"}))
		got := ClusterWarnings(s, conflictView(base...))
		want := []string{`spec.egress[1].hosts[1]: [SW1011] namespace "gone" does not exist, so "gone/*" imports nothing`}
		if diff := cmp.Diff(want, got.Strings()); diff != "" {
			t.Errorf("warnings (-want +got):\n%s", diff)
		}
	})

	t.Run("host warning names the namespaces and host", func(t *testing.T) {
		s := conflictTestSidecar("prod", "default", nil, clusterEgress([]string{"*/mysql.bar.com"}))
		got := ClusterWarnings(s, conflictView(base...))
		if len(got) != 1 || !strings.Contains(got[0].Message, `visible from namespace "prod"`) || !strings.Contains(got[0].Message, `"mysql.bar.com"`) {
			t.Errorf("warnings = %v", got.Strings())
		}
	})
}

// TestClusterWarningsRootNamespaceDotHosts: the root namespace's
// namespace-wide Sidecar is every namespace's default, and istiod reads its
// "./" as each workload's own namespace, so its "./" hosts are not looked up
// in the root namespace. A selector Sidecar there applies to the root
// namespace's own workloads and is checked as usual.
func TestClusterWarningsRootNamespaceDotHosts(t *testing.T) {
	fixtures := []conflictFixture{clusterNamespaces("prod", conflictTestRoot)}
	meshDefault := conflictTestSidecar(conflictTestRoot, "default", nil, clusterEgress([]string{"./reviews.prod.svc.cluster.local", "istio-system/*"}))
	if got := ClusterWarnings(meshDefault, conflictView(fixtures...)); len(got) != 0 {
		t.Errorf("mesh default: %v, want no warning", got.Strings())
	}
	local := conflictTestSidecar(conflictTestRoot, "gw", conflictLabels("app=gw"), clusterEgress([]string{"./reviews.prod.svc.cluster.local"}))
	if diff := cmp.Diff([]string{"spec.egress[0].hosts[0]"}, conflictWarningPaths(ClusterWarnings(local, conflictView(fixtures...)))); diff != "" {
		t.Errorf("selector Sidecar in the root namespace (-want +got):\n%s", diff)
	}
}

func TestClusterWarningsIngressTLS(t *testing.T) {
	ratings := conflictLabels("app=ratings")
	disable := map[uint32]string{9080: "DISABLE", 9443: "DISABLE"}
	tests := []struct {
		name     string
		sidecar  *sidecar.Sidecar
		fixtures []conflictFixture
		want     []string
	}{
		{
			name:    "no TLS listener",
			sidecar: conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9080})),
		},
		{
			name:    "TLS listener without PeerAuthentication",
			sidecar: conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9080, 9443}, 9443)),
			want:    []string{"spec.ingress[1].tls"},
		},
		{
			name:     "port-level DISABLE for the workload",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "ratings", ratings, "", disable)},
		},
		{
			name:     "PeerAuthentication selector narrower than the Sidecar's does not count",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "ratings-v2", conflictLabels("app=ratings", "version=v2"), "", disable)},
			want:     []string{"spec.ingress[0].tls"},
		},
		{
			name:     "PeerAuthentication selecting other workloads does not count",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "reviews", conflictLabels("app=reviews"), "DISABLE", nil)},
			want:     []string{"spec.ingress[0].tls"},
		},
		{
			name:     "PeerAuthentication with a selector does not cover a namespace-wide Sidecar",
			sidecar:  conflictTestSidecar("prod", "default", nil, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "ratings", ratings, "DISABLE", nil)},
			want:     []string{"spec.ingress[0].tls"},
		},
		{
			name:     "port-level DISABLE on another port",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{8443}, 8443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "ratings", ratings, "", disable)},
			want:     []string{"spec.ingress[0].tls"},
		},
		{
			name:     "namespace-wide policy DISABLE",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "default", nil, "DISABLE", nil)},
		},
		{
			name:     "port-level settings of a namespace-wide policy are ignored, as istiod does",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "default", nil, "DISABLE", map[uint32]string{9443: "STRICT"})},
		},
		{
			name:    "the workload policy overrides the namespace's",
			sidecar: conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{
				clusterPeerAuth("prod", "default", nil, "DISABLE", nil),
				clusterPeerAuth("prod", "ratings", ratings, "STRICT", nil),
			},
			want: []string{"spec.ingress[0].tls"},
		},
		{
			name:    "a workload policy without a mode inherits the namespace's",
			sidecar: conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{
				clusterPeerAuth("prod", "default", nil, "DISABLE", nil),
				clusterPeerAuth("prod", "ratings", ratings, "", map[uint32]string{9080: "STRICT"}),
			},
		},
		{
			name:    "a workload port-level UNSET inherits the composed mode",
			sidecar: conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{
				clusterPeerAuth("prod", "ratings", ratings, "DISABLE", map[uint32]string{9443: "UNSET"}),
			},
		},
		{
			name:    "the namespace overrides the mesh",
			sidecar: conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{
				clusterPeerAuth(conflictTestRoot, "default", nil, "DISABLE", nil),
				clusterPeerAuth("prod", "default", nil, "STRICT", nil),
			},
			want: []string{"spec.ingress[0].tls"},
		},
		{
			name:    "the policy applies to each selected workload: one of two is not disabled",
			sidecar: conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{
				conflictNamespace("prod", map[string]string{"istio-injection": "enabled"}),
				conflictPod("prod", "ratings-v1", conflictLabels("app=ratings", "version=v1")),
				conflictPod("prod", "ratings-v2", conflictLabels("app=ratings", "version=v2")),
				clusterPeerAuth("prod", "v1", conflictLabels("version=v1"), "", disable),
			},
			want: []string{"spec.ingress[0].tls"},
		},
		{
			name:    "a workload selected narrower than the Sidecar counts once that workload exists",
			sidecar: conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{
				conflictNamespace("prod", map[string]string{"istio-injection": "enabled"}),
				conflictPod("prod", "ratings-v2", conflictLabels("app=ratings", "version=v2")),
				clusterPeerAuth("prod", "ratings-v2", conflictLabels("app=ratings", "version=v2"), "", disable),
			},
		},
		{
			name:     "policy DISABLE with an UNSET port override is inherited",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "default", nil, "DISABLE", map[uint32]string{9443: "UNSET"})},
		},
		{
			name:     "namespace-wide STRICT",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("prod", "default", nil, "STRICT", nil)},
			want:     []string{"spec.ingress[0].tls"},
		},
		{
			name:     "mesh-wide DISABLE in the root namespace",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth(conflictTestRoot, "default", nil, "DISABLE", nil)},
		},
		{
			name:     "port-level settings of a mesh-wide policy are ignored",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth(conflictTestRoot, "default", nil, "", map[uint32]string{9443: "DISABLE"})},
			want:     []string{"spec.ingress[0].tls"},
		},
		{
			name:     "root-namespace policy with a selector is not mesh-wide",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth(conflictTestRoot, "ratings", ratings, "DISABLE", nil)},
			want:     []string{"spec.ingress[0].tls"},
		},
		{
			name:     "policy in another namespace does not count",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443)),
			fixtures: []conflictFixture{clusterPeerAuth("staging", "default", nil, "DISABLE", nil)},
			want:     []string{"spec.ingress[0].tls"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixtures := append([]conflictFixture{clusterNamespaces("prod", conflictTestRoot)}, tt.fixtures...)
			got := ClusterWarnings(tt.sidecar, conflictView(fixtures...))
			if diff := cmp.Diff(tt.want, conflictWarningPaths(got)); diff != "" {
				t.Errorf("warning paths (-want +got):\n%s\n%v", diff, got.Strings())
			}
		})
	}

	t.Run("warning names the port", func(t *testing.T) {
		s := conflictTestSidecar("prod", "ratings", ratings, clusterIngress([]uint32{9443}, 9443))
		got := ClusterWarnings(s, conflictView())
		if len(got) != 1 || !strings.Contains(got[0].Message, "port 9443") || !strings.Contains(got[0].Message, "PeerAuthentication") {
			t.Errorf("warnings = %v", got.Strings())
		}
	})
}

// TestClusterWarningsReferenceRatingsExample runs the reference's ratings
// Sidecar against its own PeerAuthentication: nothing to warn about. Without
// the PeerAuthentication, the TLS listener on 9443 is flagged.
func TestClusterWarningsReferenceRatingsExample(t *testing.T) {
	s := conflictTestSidecar("prod-us1", "ratings", conflictLabels("app=ratings"),
		clusterIngress([]uint32{9080, 9443}, 9443),
		clusterEgress([]string{"prod-us1/*"}, []string{"istio-system/*"}))
	fixtures := []conflictFixture{clusterNamespaces("prod-us1", "istio-system")}

	got := ClusterWarnings(s, conflictView(fixtures...))
	if diff := cmp.Diff([]string{"spec.ingress[1].tls"}, conflictWarningPaths(got)); diff != "" {
		t.Errorf("without PeerAuthentication (-want +got):\n%s", diff)
	}

	fixtures = append(fixtures, clusterPeerAuth("prod-us1", "ratings-istio-mtls-exception",
		conflictLabels("app=ratings"), "", map[uint32]string{9080: "DISABLE", 9443: "DISABLE"}))
	if got := ClusterWarnings(s, conflictView(fixtures...)); len(got) != 0 {
		t.Errorf("with the reference's PeerAuthentication: %v", got.Strings())
	}
}

// TestClusterWarningsReferenceMySQLExample: the no-ip-tables egress host
// */mysql.foo.com is provided by the reference's ServiceEntry in ns1.
func TestClusterWarningsReferenceMySQLExample(t *testing.T) {
	s := conflictReferenceExample("no-ip-tables")
	view := conflictView(clusterNamespaces("prod-us1", "ns1"))
	if diff := cmp.Diff([]string{"spec.egress[0].hosts[0]"}, conflictWarningPaths(ClusterWarnings(s, view))); diff != "" {
		t.Errorf("without ServiceEntry (-want +got):\n%s", diff)
	}
	clusterServiceEntry("ns1", "external-svc-mysql", []string{"mysql.foo.com"})(view)
	if got := ClusterWarnings(s, view); len(got) != 0 {
		t.Errorf("with ServiceEntry: %v", got.Strings())
	}
}
