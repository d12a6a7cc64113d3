//go:build controlplane

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// denialCase is an invalid Sidecar and where the denial must point.
type denialCase struct {
	name string // also the Sidecar's name and the golden file's name
	spec string // YAML under "spec:", indented by two spaces
	// field is the field path the denial must name.
	field string
	// crd marks a Sidecar that Istio's CRD schema rejects before any
	// validating webhook runs: it must be rejected, by whoever.
	crd bool
}

// denialCases each pass the CRD's schema and CEL rules and break exactly
// one of our rules, except the last, which documents the layering.
var denialCases = []denialCase{
	{
		name:  "missing-default-endpoint",
		field: "spec.ingress[0].defaultEndpoint",
		spec: `
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http`,
	},
	{
		name:  "default-endpoint-not-loopback",
		field: "spec.ingress[0].defaultEndpoint",
		spec: `
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
    defaultEndpoint: 10.0.0.1:8080`,
	},
	{
		name:  "ingress-unix-bind",
		field: "spec.ingress[0].bind",
		spec: `
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
    bind: unix:///var/run/app.sock
    defaultEndpoint: 127.0.0.1:8080`,
	},
	{
		name:  "egress-host-without-namespace",
		field: "spec.egress[0].hosts[0]",
		spec: `
  egress:
  - hosts:
    - reviews.prod.svc.cluster.local`,
	},
	{
		// Istio rejects it too ("short names (non FQDN) are not allowed").
		name:  "egress-host-short-name",
		field: "spec.egress[0].hosts[0]",
		spec: `
  egress:
  - hosts:
    - prod/reviews`,
	},
	{
		name:  "egress-host-wildcard-in-middle",
		field: "spec.egress[0].hosts[0]",
		spec: `
  egress:
  - hosts:
    - prod/reviews.*.svc.cluster.local`,
	},
	{
		name:  "egress-bind-without-port",
		field: "spec.egress[0].port",
		spec: `
  egress:
  - bind: 127.0.0.1
    hosts:
    - "./*"`,
	},
	{
		name:  "egress-port-zero-without-unix-bind",
		field: "spec.egress[0].port.number",
		spec: `
  egress:
  - port:
      number: 0
      protocol: HTTP
      name: http
    hosts:
    - "./*"`,
	},
	{
		name:  "egress-unix-bind-with-iptables",
		field: "spec.egress[0].captureMode",
		spec: `
  egress:
  - port:
      number: 0
      protocol: HTTP
      name: uds
    bind: unix:///var/run/egress.sock
    captureMode: IPTABLES
    hosts:
    - "./*"`,
	},
	{
		name:  "empty-spec",
		field: "spec",
		spec:  `  {}`,
	},
	{
		name:  "duplicate-ingress-ports",
		field: "spec.ingress[1].port.number",
		spec: `
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
    defaultEndpoint: 127.0.0.1:8080
  - port:
      number: 9080
      protocol: HTTP
      name: http-again
    defaultEndpoint: 127.0.0.1:8081`,
	},
	{
		name:  "tls-on-http-port",
		field: "spec.ingress[0].tls",
		spec: `
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
    defaultEndpoint: 127.0.0.1:8080
    tls:
      mode: SIMPLE
      serverCertificate: /etc/certs/servercert.pem
      privateKey: /etc/certs/privatekey.pem`,
	},
	{
		name:  "egress-proxy-without-allow-any",
		field: "spec.outboundTrafficPolicy.egressProxy",
		spec: `
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
    egressProxy:
      host: egress-proxy.infra.svc.cluster.local
      port:
        number: 3128`,
	},
	{
		name:  "portless-egress-not-last",
		field: "spec.egress[0].port",
		spec: `
  egress:
  - hosts:
    - istio-system/*
  - port:
      number: 9080
      protocol: HTTP
      name: http
    hosts:
    - "./*"`,
	},
	{
		// Every broken field is reported, not just the first.
		name:  "several-errors",
		field: "spec.egress[0].hosts[0]",
		spec: `
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
  egress:
  - hosts:
    - reviews.prod.svc.cluster.local`,
	},
	{
		// Istio's CRD rejects wildcards in selector labels itself (a
		// CEL rule), before the validating webhooks are called; our
		// rule for the same mistake is only a second line of defence.
		name:  "crd-selector-label-wildcard",
		field: "spec.workloadSelector.labels[app]",
		crd:   true,
		spec: `
  workloadSelector:
    labels:
      app: "reviews*"
  egress:
  - hosts:
    - "./*"`,
	},
}

// TestDenials applies each invalid Sidecar with `kubectl apply -f -` and
// compares what the administrator sees with testdata/denials/NAME.golden.
// A golden holds kubectl's stderr, then the API server's answer as client
// libraries and GitOps tools get it (code, reason, message), then the
// manifest. Run with -update to regenerate them.
func TestDenials(t *testing.T) {
	t.Parallel()
	ns := createNamespace(t, "denials")
	for _, tc := range denialCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			manifest := sidecarManifest("networking.istio.io/v1", ns, tc.name, tc.spec)

			stdout, stderr, err := kubectl(t, manifest, "apply", "-f", "-")
			if code := testenv.ExitCode(err); code <= 0 {
				t.Fatalf("kubectl apply: exit %d (%v), want a denial; stdout:\n%s", code, err, stdout)
			}
			status := apiCreate(t, manifest, false)
			if status == nil {
				t.Fatalf("the API server created %s, want a denial", tc.name)
			}
			checkDenialStatus(t, status, tc)
			checkKubectlDenial(t, stderr, tc)

			got := normalize(fmt.Sprintf("%s--- API server answer: %d %s\n%s\n--- manifest\n%s",
				stderr, status.Code, status.Reason, status.Message, manifest), ns)
			compareGolden(t, filepath.Join("testdata", "denials", tc.name+".golden"), got)
		})
	}
}

// checkDenialStatus checks the denial contract: 422 Invalid, the field
// path in the message, and (unless the CRD rejects the object first) our
// webhook's name.
func checkDenialStatus(t *testing.T, status *metav1.Status, tc denialCase) {
	t.Helper()
	if status.Code != http.StatusUnprocessableEntity || status.Reason != metav1.StatusReasonInvalid {
		t.Errorf("API server answered %d %s, want %d %s: %s",
			status.Code, status.Reason, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, status.Message)
	}
	byUs := strings.Contains(status.Message, deniedByWebhook)
	switch {
	case tc.crd:
		t.Logf("rejected by %s", map[bool]string{true: "our webhook", false: "the API server (CRD validation)"}[byUs])
	case !byUs:
		t.Errorf("the denial does not come from our webhook (want %q in the message): %s", deniedByWebhook, status.Message)
	}
	if !strings.Contains(status.Message, tc.field+": ") {
		t.Errorf("the denial does not name %s: %s", tc.field, status.Message)
	}
}

// checkKubectlDenial checks that what kubectl prints for a denial names
// the field and (unless the CRD rejects the object first) our webhook.
func checkKubectlDenial(t *testing.T, stderr string, tc denialCase) {
	t.Helper()
	if !strings.Contains(stderr, tc.field+": ") {
		t.Errorf("kubectl's message does not name %s:\n%s", tc.field, stderr)
	}
	if !tc.crd && !strings.Contains(stderr, deniedByWebhook) {
		t.Errorf("kubectl's message does not say that our webhook denied the request (%q):\n%s", deniedByWebhook, stderr)
	}
}

// normalize replaces the random namespace name.
func normalize(s, namespace string) string {
	return strings.ReplaceAll(s, namespace, "NAMESPACE")
}

// compareGolden compares got with the golden file, or rewrites it with -update.
func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update if the change is intended)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}
