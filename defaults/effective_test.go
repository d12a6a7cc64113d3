package defaults

import (
	"testing"

	"github.com/google/go-cmp/cmp"

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

func TestEffective(t *testing.T) {
	tests := []struct {
		name         string
		spec         string
		interception string
		wantEgress   []EffectiveListener
		wantIngress  []EffectiveListener
	}{
		{
			name:         "no listeners",
			spec:         `{"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"}}`,
			interception: InterceptionRedirect,
		},
		{
			name:         "absent captureMode under iptables stays DEFAULT with a note",
			spec:         `{"egress":[{"hosts":["./*"]}],"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"},"defaultEndpoint":"127.0.0.1:8080"}]}`,
			interception: InterceptionRedirect,
			wantEgress: []EffectiveListener{{
				Direction: "egress", CaptureMode: "DEFAULT", Hosts: []string{"./*"}, Note: NoteEnvironmentCapture,
			}},
			wantIngress: []EffectiveListener{{
				Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "http", CaptureMode: "DEFAULT",
				DefaultEndpoint: "127.0.0.1:8080", Note: NoteEnvironmentCapture + "; " + NoteInstanceIPBind,
			}},
		},
		{
			name:         "explicit DEFAULT under TPROXY is the same as absent",
			spec:         `{"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"db"},"captureMode":"DEFAULT","hosts":["*/mysql.foo.com"]}]}`,
			interception: InterceptionTProxy,
			wantEgress: []EffectiveListener{{
				Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "db", CaptureMode: "DEFAULT",
				Hosts: []string{"*/mysql.foo.com"}, Note: NoteEnvironmentCapture,
			}},
		},
		{
			name:         "empty interception mode is Istio's default (REDIRECT)",
			spec:         `{"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"db"},"hosts":["*/*"]}]}`,
			interception: "",
			wantEgress: []EffectiveListener{{
				Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "db", CaptureMode: "DEFAULT",
				Hosts: []string{"*/*"}, Note: NoteEnvironmentCapture,
			}},
		},
		{
			name:         "interception NONE: DEFAULT becomes NONE and a ported egress binds to loopback",
			spec:         `{"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"db"},"hosts":["*/mysql.foo.com"]},{"hosts":["istio-system/*"]}]}`,
			interception: InterceptionNone,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "db", Bind: "127.0.0.1", CaptureMode: "NONE", Hosts: []string{"*/mysql.foo.com"}},
				// Without a port there is nothing to bind: ports come from the hosts.
				{Direction: "egress", CaptureMode: "NONE", Hosts: []string{"istio-system/*"}},
			},
		},
		{
			name:         "explicit NONE egress binds to loopback even under iptables",
			spec:         `{"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"db"},"captureMode":"NONE","hosts":["*/mysql.foo.com"]}]}`,
			interception: InterceptionRedirect,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "db", Bind: "127.0.0.1", CaptureMode: "NONE", Hosts: []string{"*/mysql.foo.com"}},
			},
		},
		{
			name:         "a written bind is kept",
			spec:         `{"egress":[{"port":{"number":8080,"protocol":"HTTP","name":"h"},"captureMode":"NONE","bind":"10.0.0.1","hosts":["./*"]}]}`,
			interception: InterceptionNone,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 8080, Protocol: "HTTP", Name: "h", Bind: "10.0.0.1", CaptureMode: "NONE", Hosts: []string{"./*"}},
			},
		},
		{
			name:         "a unix bind is kept",
			spec:         `{"egress":[{"port":{"number":0,"protocol":"HTTP","name":"uds"},"bind":"unix:///var/run/app.sock","hosts":["./*"]}]}`,
			interception: InterceptionNone,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Protocol: "HTTP", Name: "uds", Bind: "unix:///var/run/app.sock", CaptureMode: "NONE", Hosts: []string{"./*"}},
			},
		},
		{
			name:         "IPTABLES is kept as written, even when the proxy intercepts nothing",
			spec:         `{"egress":[{"captureMode":"IPTABLES","hosts":["*/*"]}]}`,
			interception: InterceptionNone,
			wantEgress: []EffectiveListener{
				{Direction: "egress", CaptureMode: "IPTABLES", Hosts: []string{"*/*"}},
			},
		},
		{
			name: "reference no-ip-tables example",
			spec: `{"workloadSelector":{"labels":{"app":"productpage"}},
				"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"somename"},"defaultEndpoint":"127.0.0.1:8080","captureMode":"NONE"}],
				"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"egressmysql"},"captureMode":"NONE","bind":"127.0.0.1","hosts":["*/mysql.foo.com"]}]}`,
			interception: InterceptionNone,
			wantEgress: []EffectiveListener{
				{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "egressmysql", Bind: "127.0.0.1", CaptureMode: "NONE", Hosts: []string{"*/mysql.foo.com"}},
			},
			wantIngress: []EffectiveListener{
				{Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "somename", CaptureMode: "NONE", DefaultEndpoint: "127.0.0.1:8080", Note: NoteInstanceIPBind},
			},
		},
		{
			name: "reference partial-ip-tables example",
			spec: `{"ingress":[{"bind":"172.16.1.32","port":{"number":80,"protocol":"HTTP","name":"somename"},"defaultEndpoint":"127.0.0.1:8080","captureMode":"NONE"}],
				"egress":[{"captureMode":"IPTABLES","hosts":["*/*"]}]}`,
			interception: InterceptionRedirect,
			wantEgress: []EffectiveListener{
				{Direction: "egress", CaptureMode: "IPTABLES", Hosts: []string{"*/*"}},
			},
			wantIngress: []EffectiveListener{
				{Direction: "ingress", Port: 80, Protocol: "HTTP", Name: "somename", Bind: "172.16.1.32", CaptureMode: "NONE", DefaultEndpoint: "127.0.0.1:8080"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			egress, ingress := Effective(decodeSidecar(t, tc.spec), tc.interception)
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
	egress, ingress := Effective(nil, InterceptionNone)
	if egress != nil || ingress != nil {
		t.Errorf("Effective(nil) = %v, %v; want no listeners", egress, ingress)
	}
}
