package oracle

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	networking "istio.io/api/networking/v1alpha3"
)

// A table of our own, shaped like Istio's, exercising the interpreter.
const interpreterSource = `package x

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	net "istio.io/api/networking/v1alpha3"
)

func TestValidateSidecar(t *testing.T) {
	tests := []struct {
		name       string
		in         *net.Sidecar
		valid, warn bool
	}{
		{"enum constant, elided pointers, map", &net.Sidecar{
			WorkloadSelector: &net.WorkloadSelector{Labels: map[string]string{"app": "a"}},
			Egress: []*net.IstioEgressListener{
				{Port: &net.SidecarPort{Number: 9080, Protocol: "HTTP", Name: "h"}, CaptureMode: net.CaptureMode_NONE, Hosts: []string{"./*"}},
			},
		}, true, false},
		{name: "keyed row, nested enum, conversion, message from another package", in: &net.Sidecar{
			OutboundTrafficPolicy: &net.OutboundTrafficPolicy{Mode: net.OutboundTrafficPolicy_Mode(1)},
			Ingress: []*net.IstioIngressListener{{
				Port: &net.SidecarPort{Number: 80, Protocol: "HTTP"},
				Tls:  &net.ServerTLSSettings{Mode: net.ServerTLSSettings_SIMPLE},
				ConnectionPool: &net.ConnectionPoolSettings{Tcp: &net.ConnectionPoolSettings_TCPSettings{
					ConnectTimeout: &durationpb.Duration{Seconds: -1 + 0},
				}},
			}},
		}, valid: false, warn: true},
		{"nil input", nil, false, false},
		{"call that is not a conversion", &net.Sidecar{InboundConnectionPool: &net.ConnectionPoolSettings{
			Tcp: &net.ConnectionPoolSettings_TCPSettings{ConnectTimeout: durationpb.New(time.Second)},
		}}, true, false},
		{"unknown field", &net.Sidecar{NoSuchField: "x"}, true, false},
	}
	_ = tests
}
`

func TestInterpreterOnOwnTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x_test.go")
	if err := os.WriteFile(path, []byte(interpreterSource), 0o644); err != nil {
		t.Fatal(err)
	}
	cases, skipped, err := LoadSidecarCases(path)
	// The second row uses a binary expression on numbers, which the
	// interpreter does not evaluate: it must be reported, not dropped.
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]SidecarCase{}
	for _, c := range cases {
		names[c.Name] = c
	}
	skippedNames := map[string]string{}
	for _, s := range skipped {
		skippedNames[s.Name] = s.Reason
	}
	if len(cases)+len(skipped) != 5 {
		t.Fatalf("cases %d + skipped %d, want 5 rows", len(cases), len(skipped))
	}
	want := &networking.Sidecar{
		WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": "a"}},
		Egress: []*networking.IstioEgressListener{{
			Port:        &networking.SidecarPort{Number: 9080, Protocol: "HTTP", Name: "h"},
			CaptureMode: networking.CaptureMode_NONE,
			Hosts:       []string{"./*"},
		}},
	}
	c, ok := names["enum constant, elided pointers, map"]
	if !ok || !proto.Equal(c.Sidecar, want) || !c.Valid || c.Warning {
		t.Errorf("row 1: %+v (skipped: %v)", c, skippedNames)
	}
	if c, ok := names["nil input"]; !ok || c.Sidecar != nil {
		t.Errorf("nil input: %+v", c)
	}
	for _, n := range []string{
		"keyed row, nested enum, conversion, message from another package",
		"call that is not a conversion",
		"unknown field",
	} {
		if _, ok := skippedNames[n]; !ok {
			t.Errorf("%q not reported as skipped (cases %v)", n, names)
		}
	}
}

func TestInterpreterExpressions(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "x.go", `package x
import (
	"google.golang.org/protobuf/types/known/durationpb"
	net "istio.io/api/networking/v1alpha3"
)`, 0)
	if err != nil {
		t.Fatal(err)
	}
	in := newInterpreter(token.NewFileSet(), file)
	cases := []struct {
		expr string
		typ  reflect.Type
		want proto.Message
	}{
		{`&net.OutboundTrafficPolicy{Mode: net.OutboundTrafficPolicy_Mode(1)}`, reflect.TypeOf(&networking.OutboundTrafficPolicy{}),
			&networking.OutboundTrafficPolicy{Mode: networking.OutboundTrafficPolicy_ALLOW_ANY}},
		{`&net.ServerTLSSettings{Mode: net.ServerTLSSettings_SIMPLE, CipherSuites: []string{"a", "b"}}`, reflect.TypeOf(&networking.ServerTLSSettings{}),
			&networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, CipherSuites: []string{"a", "b"}}},
		{`&net.ConnectionPoolSettings_TCPSettings{MaxConnections: 7, ConnectTimeout: &durationpb.Duration{Seconds: -2}}`,
			reflect.TypeOf(&networking.ConnectionPoolSettings_TCPSettings{}),
			&networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 7, ConnectTimeout: &durationpb.Duration{Seconds: -2}}},
		{`&net.StringMatch{MatchType: &net.StringMatch_Prefix{Prefix: "/p"}}`, reflect.TypeOf(&networking.StringMatch{}),
			&networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/p"}}},
	}
	for _, tc := range cases {
		e, err := parser.ParseExpr(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		v, err := in.eval(e, tc.typ)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if got := v.Interface().(proto.Message); !proto.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.expr, got, tc.want)
		}
	}
}
