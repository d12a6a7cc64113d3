//lint:file-ignore SA1019 targetPort is deprecated in istio.io/api; these rules reject it on purpose.

package validation

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// objNamespace is the namespace of the Sidecars built by objectSidecar.
const objNamespace = "prod"

// errAtT is what the tests assert about a field error: its type and path.
// Details are written for people and checked only for being present.
type errAtT struct {
	Type  field.ErrorType
	Field string
}

func errAt(t field.ErrorType, f string) errAtT { return errAtT{Type: t, Field: f} }

// warnAtT is what the tests assert about a warning: its path and, when Msg
// is not empty, its exact message.
type warnAtT struct {
	Path string
	Msg  string
}

// objectSidecar wraps spec in a Sidecar in objNamespace. The fields are moved
// one by one because protobuf messages must not be copied by value.
func objectSidecar(spec *networking.Sidecar) *sidecar.Sidecar {
	s := &sidecar.Sidecar{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: objNamespace}}
	s.Spec.WorkloadSelector = spec.WorkloadSelector
	s.Spec.Ingress = spec.Ingress
	s.Spec.Egress = spec.Egress
	s.Spec.InboundConnectionPool = spec.InboundConnectionPool
	s.Spec.OutboundTrafficPolicy = spec.OutboundTrafficPolicy
	return s
}

// withChange applies change to v and returns it, so a test case can start
// from a valid listener and break one thing inline.
func withChange[T any](v T, change func(T)) T {
	change(v)
	return v
}

// okIngress is a valid ingress listener.
func okIngress(port uint32, protocol string) *networking.IstioIngressListener {
	return &networking.IstioIngressListener{
		Port:            &networking.SidecarPort{Number: port, Protocol: protocol, Name: "in"},
		DefaultEndpoint: "127.0.0.1:8080",
	}
}

// okEgress is a valid egress listener (port 0 means no port).
func okEgress(port uint32, hosts ...string) *networking.IstioEgressListener {
	if len(hosts) == 0 {
		hosts = []string{"./*"}
	}
	l := &networking.IstioEgressListener{Hosts: hosts}
	if port != 0 {
		l.Port = &networking.SidecarPort{Number: port, Protocol: "HTTP", Name: "out"}
	}
	return l
}

func checkObjectErrors(t *testing.T, got field.ErrorList, want []errAtT) {
	t.Helper()
	for _, e := range got {
		if e.Detail == "" {
			t.Errorf("error %s %s has no detail; every error must tell the admin what is allowed", e.Type, e.Field)
		}
		if e.Origin == "" {
			t.Errorf("error %s %s names no rule", e.Type, e.Field)
		}
	}
	wantErrs := make(field.ErrorList, 0, len(want))
	for _, w := range want {
		wantErrs = append(wantErrs, &field.Error{Type: w.Type, Field: w.Field})
	}
	field.ErrorMatcher{}.ByType().ByField().Test(t, wantErrs, got)
}

func checkObjectWarnings(t *testing.T, got Warnings, want []warnAtT) {
	t.Helper()
	gotAt := make([]warnAtT, 0, len(got))
	for _, w := range got {
		if w.Message == "" {
			t.Errorf("warning at %s has no message", w.Path)
		}
		if w.Rule == "" {
			t.Errorf("warning at %s names no rule", w.Path)
		}
		gotAt = append(gotAt, warnAtT{Path: w.Path.String(), Msg: w.Message})
	}
	if len(gotAt) == len(want) {
		for i := range want {
			if want[i].Msg == "" {
				gotAt[i].Msg = ""
			}
		}
	}
	if diff := cmp.Diff(want, gotAt, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestValidateSidecar(t *testing.T) {
	cases := []struct {
		name  string
		spec  *networking.Sidecar
		want  []errAtT
		warns []warnAtT
	}{
		{
			name: "empty spec is the only error reported",
			spec: &networking.Sidecar{},
			want: []errAtT{errAt(field.ErrorTypeRequired, "spec")},
		},
		{
			name: "empty spec hides other problems such as an empty selector",
			spec: &networking.Sidecar{WorkloadSelector: &networking.WorkloadSelector{}},
			want: []errAtT{errAt(field.ErrorTypeRequired, "spec")},
		},
		{
			name: "egress alone is enough",
			spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{okEgress(0)}},
		},
		{
			name: "ingress alone is enough",
			spec: &networking.Sidecar{Ingress: []*networking.IstioIngressListener{okIngress(9080, "HTTP")}},
		},
		{
			name: "outboundTrafficPolicy alone is enough",
			spec: &networking.Sidecar{OutboundTrafficPolicy: &networking.OutboundTrafficPolicy{}},
		},
		{
			name: "inboundConnectionPool alone is enough",
			spec: &networking.Sidecar{InboundConnectionPool: &networking.ConnectionPoolSettings{
				Tcp: &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 10},
			}},
		},
		{
			name: "every section is checked",
			spec: &networking.Sidecar{
				WorkloadSelector:      &networking.WorkloadSelector{},
				Ingress:               []*networking.IstioIngressListener{{}},
				Egress:                []*networking.IstioEgressListener{{}},
				InboundConnectionPool: &networking.ConnectionPoolSettings{},
				OutboundTrafficPolicy: &networking.OutboundTrafficPolicy{EgressProxy: &networking.Destination{
					Host: "proxy.infra.svc.cluster.local", Port: &networking.PortSelector{Number: 3128},
				}},
			},
			want: []errAtT{
				errAt(field.ErrorTypeRequired, "spec.workloadSelector.labels"),
				errAt(field.ErrorTypeRequired, "spec.ingress[0].port"),
				errAt(field.ErrorTypeRequired, "spec.ingress[0].defaultEndpoint"),
				errAt(field.ErrorTypeRequired, "spec.egress[0].hosts"),
				errAt(field.ErrorTypeRequired, "spec.inboundConnectionPool"),
				errAt(field.ErrorTypeForbidden, "spec.outboundTrafficPolicy.egressProxy"),
			},
		},
		{
			name: "warnings from listeners are collected",
			spec: &networking.Sidecar{
				Ingress: []*networking.IstioIngressListener{withChange(okIngress(5432, "TCP"), func(l *networking.IstioIngressListener) {
					l.ConnectionPool = &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{MaxRetries: 1}}
				})},
				Egress: []*networking.IstioEgressListener{okEgress(0, "a/*", "a/b.com")},
			},
			warns: []warnAtT{
				{Path: "spec.ingress[0].connectionPool.http"},
				{Path: "spec.egress[0].hosts[1]"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warns := ValidateSidecar(objectSidecar(tc.spec))
			checkObjectErrors(t, errs, tc.want)
			checkObjectWarnings(t, warns, tc.warns)
		})
	}
}

func TestValidateSidecarNil(t *testing.T) {
	errs, warns := ValidateSidecar(nil)
	checkObjectErrors(t, errs, []errAtT{errAt(field.ErrorTypeRequired, "spec")})
	checkObjectWarnings(t, warns, nil)
}

// TestDetails pins the parts of messages that carry a rule of their own:
// where the (Type, Field) pair alone would not notice the rule going away, or
// where the brief wording matters to the admin reading it.
func TestDetails(t *testing.T) {
	egressOK := []*networking.IstioEgressListener{okEgress(0)}
	cases := []struct {
		name   string
		spec   *networking.Sidecar
		field  string
		detail string
	}{
		{
			name:   "empty spec",
			spec:   &networking.Sidecar{},
			field:  "spec",
			detail: "a Sidecar must configure at least one of ingress, egress, outboundTrafficPolicy, inboundConnectionPool",
		},
		{
			name: "wildcard selector key",
			spec: &networking.Sidecar{Egress: egressOK, WorkloadSelector: &networking.WorkloadSelector{
				Labels: map[string]string{"app*": "x"},
			}},
			field:  "spec.workloadSelector.labels[app*]",
			detail: "wildcards are not supported in workloadSelector labels",
		},
		{
			name: "wildcard selector value",
			spec: &networking.Sidecar{Egress: egressOK, WorkloadSelector: &networking.WorkloadSelector{
				Labels: map[string]string{"app": "rat*"},
			}},
			field:  "spec.workloadSelector.labels[app]",
			detail: "wildcards are not supported in workloadSelector labels",
		},
		{
			name: "unix ingress bind",
			spec: &networking.Sidecar{Ingress: []*networking.IstioIngressListener{
				withChange(okIngress(80, "HTTP"), func(l *networking.IstioIngressListener) { l.Bind = "unix:///in.sock" }),
			}},
			field:  "spec.ingress[0].bind",
			detail: "Unix domain socket addresses are not allowed for ingress listeners",
		},
		{
			name: "defaultEndpoint lists the allowed forms",
			spec: &networking.Sidecar{Ingress: []*networking.IstioIngressListener{
				withChange(okIngress(80, "HTTP"), func(l *networking.IstioIngressListener) { l.DefaultEndpoint = "10.0.0.1:80" }),
			}},
			field:  "spec.ingress[0].defaultEndpoint",
			detail: defaultEndpointForms,
		},
		{
			name:   "host without namespace",
			spec:   &networking.Sidecar{Egress: []*networking.IstioEgressListener{okEgress(0, "foo.com")}},
			field:  "spec.egress[0].hosts[0]",
			detail: "must be namespace/dnsName",
		},
		{
			name:   "wildcard inside a host name",
			spec:   &networking.Sidecar{Egress: []*networking.IstioEgressListener{okEgress(0, "ns/foo.*.com")}},
			field:  "spec.egress[0].hosts[0]",
			detail: "left-most label",
		},
		{
			name:   "port-less egress listener not last",
			spec:   &networking.Sidecar{Egress: []*networking.IstioEgressListener{okEgress(0), okEgress(80)}},
			field:  "spec.egress[0].port",
			detail: "the egress listener without a port must be the last one",
		},
		{
			name: "egress port 0 without a unix bind",
			spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
				withChange(okEgress(80), func(l *networking.IstioEgressListener) { l.Port.Number = 0 }),
			}},
			field:  "spec.egress[0].port.number",
			detail: "port 0 is allowed only with a Unix domain socket bind",
		},
		{
			name:   "empty connection pool",
			spec:   &networking.Sidecar{InboundConnectionPool: &networking.ConnectionPoolSettings{}},
			field:  "spec.inboundConnectionPool",
			detail: "connection pool must set at least one of http, tcp",
		},
		{
			name: "targetPort",
			spec: &networking.Sidecar{Ingress: []*networking.IstioIngressListener{
				withChange(okIngress(80, "HTTP"), func(l *networking.IstioIngressListener) { l.Port.TargetPort = 8080 }),
			}},
			field:  "spec.ingress[0].port.targetPort",
			detail: "targetPort has no effect on Sidecars",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, _ := ValidateSidecar(objectSidecar(tc.spec))
			for _, e := range errs {
				if e.Field == tc.field && strings.Contains(e.Detail, tc.detail) {
					return
				}
			}
			t.Errorf("no error on %s with detail containing %q; got %v", tc.field, tc.detail, errs)
		})
	}
}
