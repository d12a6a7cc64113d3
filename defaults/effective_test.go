package defaults

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

func decodeSidecar(t *testing.T, spec string) *sidecar.Sidecar {
	t.Helper()
	obj, errs := sidecar.Decode([]byte(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"s","namespace":"prod"},"spec":` + spec + `}`))
	if len(errs) > 0 {
		t.Fatalf("decoding test Sidecar: %v", errs)
	}
	return obj
}

// TestEffective pins istiod's listener rules (pilot/pkg/networking/core
// listener.go buildSidecarOutboundListeners and listener_inbound.go
// getBindToPort) case by case; test/istiodiff checks them against istiod's
// own listener generation.
func TestEffective(t *testing.T) {
	redirect := EffectiveOptions{InterceptionMode: mesh.InterceptionRedirect}
	none := EffectiveOptions{InterceptionMode: mesh.InterceptionNone}
	tests := []struct {
		name        string
		spec        string
		opts        EffectiveOptions
		wantEgress  []EffectiveListener
		wantIngress []EffectiveListener
	}{
		{
			name: "no listeners",
			spec: `{"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"}}`,
			opts: redirect,
		},
		{
			name: "DEFAULT under iptables: not bound, iptables delivers",
			spec: `{"egress":[{"hosts":["./*"]}],"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"},"defaultEndpoint":"127.0.0.1:8080"}]}`,
			opts: redirect,
			wantEgress: []EffectiveListener{{
				Direction: "egress", CaptureMode: "DEFAULT", Hosts: []string{"./*"}, Note: NotePortless + "; " + NoteIPTables,
			}},
			wantIngress: []EffectiveListener{{
				Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "http", CaptureMode: "DEFAULT",
				DefaultEndpoint: "127.0.0.1:8080", Note: NoteIPTables,
			}},
		},
		{
			name: "empty interception mode is REDIRECT",
			spec: `{"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"db"},"hosts":["*/*"]}]}`,
			wantEgress: []EffectiveListener{{
				Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "db", CaptureMode: "DEFAULT", Hosts: []string{"*/*"}, Note: NoteIPTables,
			}},
		},
		{
			name: "interception NONE binds every egress listener to loopback, whatever its captureMode",
			spec: `{"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"db"},"hosts":["*/mysql.foo.com"]},{"port":{"number":8080,"protocol":"HTTP","name":"h"},"captureMode":"IPTABLES","hosts":["./*"]},{"hosts":["istio-system/*"]}]}`,
			opts: none,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "db", BindToPort: true, Binds: []string{"127.0.0.1"}, CaptureMode: "DEFAULT", Hosts: []string{"*/mysql.foo.com"}},
				{Direction: "egress", Port: 8080, Protocol: "HTTP", Name: "h", BindToPort: true, Binds: []string{"127.0.0.1"}, CaptureMode: "IPTABLES", Hosts: []string{"./*"}},
				{Direction: "egress", BindToPort: true, Binds: []string{"127.0.0.1"}, CaptureMode: "DEFAULT", Hosts: []string{"istio-system/*"}, Note: NotePortless},
			},
		},
		{
			name: "captureMode NONE binds the loopback addresses of the IP family: IPv6",
			spec: `{"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"db"},"captureMode":"NONE","hosts":["*/mysql.foo.com"]}]}`,
			opts: EffectiveOptions{InterceptionMode: mesh.InterceptionRedirect, IPFamily: mesh.IPv6},
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "db", BindToPort: true, Binds: []string{"::1"}, CaptureMode: "NONE", Hosts: []string{"*/mysql.foo.com"}},
			},
		},
		{
			name: "captureMode NONE on dual stack binds both loopback addresses",
			spec: `{"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"db"},"captureMode":"NONE","hosts":["*/mysql.foo.com"]}]}`,
			opts: EffectiveOptions{IPFamily: mesh.DualStack},
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "db", BindToPort: true, Binds: []string{"127.0.0.1", "::1"}, CaptureMode: "NONE", Hosts: []string{"*/mysql.foo.com"}},
			},
		},
		{
			name: "a written bind is kept",
			spec: `{"egress":[{"port":{"number":8080,"protocol":"HTTP","name":"h"},"captureMode":"NONE","bind":"10.0.0.1","hosts":["./*"]}]}`,
			opts: none,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 8080, Protocol: "HTTP", Name: "h", BindToPort: true, Binds: []string{"10.0.0.1"}, CaptureMode: "NONE", Hosts: []string{"./*"}},
			},
		},
		{
			name: "a unix bind is always bound",
			spec: `{"egress":[{"port":{"number":0,"protocol":"HTTP","name":"uds"},"bind":"unix:///var/run/app.sock","hosts":["./*"]}]}`,
			opts: redirect,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Protocol: "HTTP", Name: "uds", BindToPort: true, Binds: []string{"unix:///var/run/app.sock"}, CaptureMode: "DEFAULT", Hosts: []string{"./*"}},
			},
		},
		{
			name: "a written bind without captureMode NONE under iptables: the listener's address, not bound",
			spec: `{"egress":[{"port":{"number":8080,"protocol":"HTTP","name":"h"},"bind":"10.0.0.1","hosts":["./*"]}]}`,
			opts: redirect,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 8080, Protocol: "HTTP", Name: "h", Binds: []string{"10.0.0.1"}, CaptureMode: "DEFAULT", Hosts: []string{"./*"}, Note: NoteIPTables},
			},
		},
		{
			name: "an HTTP listener on a proxy port without bind is skipped",
			spec: `{"egress":[{"port":{"number":15021,"protocol":"HTTP","name":"h"},"hosts":["./*"]},{"port":{"number":15090,"protocol":"TCP","name":"t"},"hosts":["./*"]},{"port":{"number":15001,"protocol":"TCP","name":"w"},"bind":"0.0.0.0","hosts":["./*"]}]}`,
			opts: redirect,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 15021, Protocol: "HTTP", Name: "h", CaptureMode: "DEFAULT", Hosts: []string{"./*"}, Note: NoteIPTables,
					Skipped: "port 15021 is one of the proxy's own listeners (15001, 15006, 15021, 15090); istiod skips this listener"},
				{Direction: "egress", Port: 15090, Protocol: "TCP", Name: "t", CaptureMode: "DEFAULT", Hosts: []string{"./*"}, Note: NoteIPTables},
				{Direction: "egress", Port: 15001, Protocol: "TCP", Name: "w", Binds: []string{"0.0.0.0"}, CaptureMode: "DEFAULT", Hosts: []string{"./*"}, Note: NoteIPTables,
					Skipped: "port 15001 is one of the proxy's own listeners (15001, 15006, 15021, 15090); istiod skips this listener"},
			},
		},
		{
			name: "reference no-ip-tables example under interception NONE",
			spec: `{"workloadSelector":{"labels":{"app":"productpage"}},
				"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"somename"},"defaultEndpoint":"127.0.0.1:8080","captureMode":"NONE"}],
				"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"egressmysql"},"captureMode":"NONE","bind":"127.0.0.1","hosts":["*/mysql.foo.com"]}]}`,
			opts: none,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "egressmysql", BindToPort: true, Binds: []string{"127.0.0.1"}, CaptureMode: "NONE", Hosts: []string{"*/mysql.foo.com"}},
			},
			wantIngress: []EffectiveListener{
				{Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "somename", BindToPort: true, CaptureMode: "NONE", DefaultEndpoint: "127.0.0.1:8080",
					Note: NoteInstanceIP + "; " + NoteServiceInbound},
			},
		},
		{
			name: "an ingress DEFAULT binds under interception NONE",
			spec: `{"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"somename"},"defaultEndpoint":"127.0.0.1:8080"}]}`,
			opts: none,
			wantIngress: []EffectiveListener{
				{Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "somename", BindToPort: true, CaptureMode: "DEFAULT", DefaultEndpoint: "127.0.0.1:8080",
					Note: NoteInstanceIP + "; " + NoteServiceInbound},
			},
		},
		{
			name: "an ingress IPTABLES under interception NONE has nothing feeding it",
			spec: `{"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"h"},"defaultEndpoint":"127.0.0.1:8080","captureMode":"IPTABLES"}]}`,
			opts: none,
			wantIngress: []EffectiveListener{
				{Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "h", CaptureMode: "IPTABLES", DefaultEndpoint: "127.0.0.1:8080",
					Skipped: SkippedInboundWithoutIPTables, Note: NoteServiceInbound},
			},
		},
		{
			name: "an ingress listener on the status port: HTTP without bind skipped, TCP kept, wildcard bind skipped",
			spec: `{"ingress":[{"port":{"number":15021,"protocol":"HTTP","name":"h"},"defaultEndpoint":"127.0.0.1:8080"},{"port":{"number":15090,"protocol":"TCP","name":"t"},"defaultEndpoint":"127.0.0.1:8081"},{"port":{"number":15090,"protocol":"TCP","name":"w"},"bind":"0.0.0.0","captureMode":"NONE","defaultEndpoint":"127.0.0.1:8082"}]}`,
			opts: redirect,
			wantIngress: []EffectiveListener{
				{Direction: "ingress", Port: 15021, Protocol: "HTTP", Name: "h", CaptureMode: "DEFAULT", DefaultEndpoint: "127.0.0.1:8080", Note: NoteIPTables,
					Skipped: "port 15021 is one of the proxy's own listeners (15021, 15090); istiod skips this listener"},
				{Direction: "ingress", Port: 15090, Protocol: "TCP", Name: "t", CaptureMode: "DEFAULT", DefaultEndpoint: "127.0.0.1:8081", Note: NoteIPTables},
				{Direction: "ingress", Port: 15090, Protocol: "TCP", Name: "w", CaptureMode: "NONE", BindToPort: true, Binds: []string{"0.0.0.0"}, DefaultEndpoint: "127.0.0.1:8082",
					Skipped: "port 15090 is one of the proxy's own listeners (15021, 15090); istiod skips this listener"},
			},
		},
		{
			name: "reference partial-ip-tables example",
			spec: `{"ingress":[{"bind":"172.16.1.32","port":{"number":80,"protocol":"HTTP","name":"somename"},"defaultEndpoint":"127.0.0.1:8080","captureMode":"NONE"}],
				"egress":[{"captureMode":"IPTABLES","hosts":["*/*"]}]}`,
			opts: redirect,
			wantEgress: []EffectiveListener{
				{Direction: "egress", CaptureMode: "IPTABLES", Hosts: []string{"*/*"}, Note: NotePortless + "; " + NoteIPTables},
			},
			wantIngress: []EffectiveListener{
				{Direction: "ingress", Port: 80, Protocol: "HTTP", Name: "somename", BindToPort: true, Binds: []string{"172.16.1.32"}, CaptureMode: "NONE", DefaultEndpoint: "127.0.0.1:8080"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			egress, ingress := Effective(decodeSidecar(t, tc.spec), tc.opts)
			if diff := cmp.Diff(tc.wantEgress, egress); diff != "" {
				t.Errorf("egress (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantIngress, ingress); diff != "" {
				t.Errorf("ingress (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEffectiveNilSidecar(t *testing.T) {
	egress, ingress := Effective(nil, EffectiveOptions{InterceptionMode: mesh.InterceptionNone})
	if egress != nil || ingress != nil {
		t.Errorf("Effective(nil) = %v, %v; want no listeners", egress, ingress)
	}
}
