//go:build controlplane

package e2e

import (
	"strings"
	"testing"
)

// TestWarnings: mistakes Istio tolerates are admitted, and kubectl shows
// the administrator a "Warning:" line naming the field. Each Sidecar has
// its own workloadSelector: a namespace may hold only one Sidecar without.
// Other warnings (those that read cluster state, such as "no Service
// provides this host") may come too; only the expected line is required.
func TestWarnings(t *testing.T) {
	t.Parallel()
	ns := createNamespace(t, "warnings")
	cases := []struct {
		name string
		spec string
		want string // the exact Warning line
	}{
		{
			// ./foo... is already covered by ./* (validation/hosts.go).
			name: "duplicate-egress-host",
			spec: `
  workloadSelector:
    labels:
      app: APP
  egress:
  - hosts:
    - "./*"
    - ./foo.svc.cluster.local`,
			want: `Warning: spec.egress[0].hosts[1]: [SW0406] duplicated egress host "./foo.svc.cluster.local"`,
		},
		{
			name: "all-hosts-and-more",
			spec: `
  workloadSelector:
    labels:
      app: APP
  egress:
  - hosts:
    - "*/*"
    - istio-system/*`,
			want: "Warning: spec.egress[0].hosts: [SW0407] `*/*` already selects every host; the other hosts in this listener have no effect",
		},
		{
			name: "http-pool-on-tcp-port",
			spec: `
  workloadSelector:
    labels:
      app: APP
  ingress:
  - port:
      number: 9000
      protocol: TCP
      name: tcp
    defaultEndpoint: 127.0.0.1:9000
    connectionPool:
      http:
        http1MaxPendingRequests: 10`,
			want: `Warning: spec.ingress[0].connectionPool.http: [SW0210] port 9000 has protocol "TCP", which is not HTTP, HTTP2, GRPC or GRPC-WEB; only TCP settings will apply`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			manifest := sidecarManifest("networking.istio.io/v1", ns, tc.name, strings.ReplaceAll(tc.spec, "APP", tc.name))
			stdout, stderr, err := kubectl(t, manifest, "apply", "-f", "-")
			if err != nil {
				t.Fatalf("kubectl apply: %v (want admitted with a warning)\nstderr:\n%s", err, stderr)
			}
			if got, want := strings.TrimSpace(stdout), "sidecar.networking.istio.io/"+tc.name+" created"; got != want {
				t.Errorf("kubectl apply printed %q, want %q", got, want)
			}
			found := false
			for _, line := range scanLines(stderr) {
				if !strings.HasPrefix(line, "Warning: ") {
					t.Errorf("kubectl printed a line on stderr that is not a warning: %q", line)
				}
				found = found || line == tc.want
			}
			if !found {
				t.Errorf("kubectl's stderr:\n%s\nwant the line:\n%s", stderr, tc.want)
			}
		})
	}
}
