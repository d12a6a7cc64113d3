package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

const checkReferenceDir = "../../validation/testdata/reference"

// runCLI calls run as main would and returns the exit code and both outputs.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func checkFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	checkAllowedSidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: prod
spec:
  egress:
  - hosts:
    - ./*
    - ./*
`
	checkDeniedSidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: broken
  namespace: prod
spec:
  egress:
  - hostz:
    - ./*
`
)

func TestRunCommands(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "no arguments", args: nil, wantCode: 2, wantStderr: "Usage: sidecar-webhook COMMAND"},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStderr: "Usage: sidecar-webhook COMMAND"},
		{name: "-h", args: []string{"-h"}, wantCode: 0, wantStderr: "check"},
		{name: "--help", args: []string{"--help"}, wantCode: 0, wantStderr: "serve"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantStderr: `unknown command "frobnicate"`},
		{name: "check -h", args: []string{"check", "-h"}, wantCode: 0, wantStderr: "Usage: sidecar-webhook check"},
		{name: "check unknown flag", args: []string{"check", "--bogus", "x.yaml"}, wantCode: 2, wantStderr: "bogus"},
		{name: "check without paths", args: []string{"check"}, wantCode: 2, wantStderr: "at least one PATH is required"},
		{name: "check with a bad -o", args: []string{"check", "-o", "yaml", "x.yaml"}, wantCode: 2, wantStderr: `-o must be text, json, sarif or junit, got "yaml"`},
		{name: "check with a bad enforcement", args: []string{"check", "--enforcement", "bogus", "x.yaml"}, wantCode: 2, wantStderr: "--enforcement must be deny or warn"},
		{name: "check a missing file", args: []string{"check", "does-not-exist.yaml"}, wantCode: 2, wantStderr: "does-not-exist.yaml: no such file"},
		{name: "serve with a bad enforcement", args: []string{"serve", "--enforcement=bogus"}, wantCode: 2, wantStderr: `--enforcement must be deny or warn, got "bogus"`},
		{name: "serve with an unknown flag", args: []string{"serve", "--bogus"}, wantCode: 2, wantStderr: "bogus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.wantCode, stderr)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.wantStderr, stderr)
			}
			if stdout != "" {
				t.Errorf("nothing belongs on stdout here, got:\n%s", stdout)
			}
		})
	}
}

func TestCheckExitCodes(t *testing.T) {
	allowed := checkFile(t, "allowed.yaml", checkAllowedSidecar)
	denied := checkFile(t, "denied.yaml", checkDeniedSidecar)
	unparsable := checkFile(t, "unparsable.yaml", checkAllowedSidecar+"---\nkind: [\n")
	cases := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		// wantStderr is a substring of stderr, or "" for an empty stderr.
		wantStderr string
	}{
		{name: "all allowed", args: []string{allowed}, wantCode: 0},
		{name: "one denied", args: []string{allowed, denied}, wantCode: 1},
		{name: "denied, enforcement warn", args: []string{"--enforcement", "warn", denied}, wantCode: 1},
		{name: "nothing to check", args: []string{"-"}, stdin: "", wantCode: 0},
		{name: "stdin", args: []string{"-"}, stdin: checkDeniedSidecar, wantCode: 1},
		{name: "reference examples", args: []string{"--root-namespace", "istio-config", checkReferenceDir}, wantCode: 1},
		{name: "parse error names file and line", args: []string{allowed, unparsable}, wantCode: 2, wantStderr: unparsable + ":12: "},
		{name: "bad workload names file and line", args: []string{"-"}, stdin: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: x\n", wantCode: 2, wantStderr: "-:1: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.stdin, append([]string{"check"}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.wantCode, stderr)
			}
			if tc.wantStderr == "" && stderr != "" {
				t.Errorf("unexpected stderr: %s", stderr)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.wantStderr, stderr)
			}
		})
	}
}

// The enforcement=warn case above still exits 1 only because the unknown
// field is a decode error, which warn cannot admit; a rule broken under warn
// exits 0.
func TestCheckEnforcementWarnExitsZero(t *testing.T) {
	second := strings.Replace(checkAllowedSidecar, "name: default", "name: second", 1)
	path := checkFile(t, "two.yaml", checkAllowedSidecar+"---\n"+second)
	if code, _, stderr := runCLI(t, "", "check", path); code != 1 {
		t.Fatalf("deny: exit code %d, want 1 (%s)", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "", "check", "--enforcement=warn", path)
	if code != 0 {
		t.Errorf("warn: exit code %d, want 0 (%s)", code, stderr)
	}
	if !strings.Contains(stdout, "    warning: [SW1001] would be denied (enforcement=warn): ") {
		t.Errorf("warn: the denial is not reported as a warning:\n%s", stdout)
	}
}

func TestCheckText(t *testing.T) {
	allowed := checkFile(t, "allowed.yaml", checkAllowedSidecar)
	denied := checkFile(t, "denied.yaml", checkDeniedSidecar)
	code, stdout, _ := runCLI(t, "", "check", allowed, denied)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	want := []string{
		"ALLOWED Sidecar prod/default (" + allowed + ":1)",
		`    warning: spec.egress[0].hosts[1]: [SW0406] duplicated egress host "./*"`,
		"DENIED Sidecar prod/broken (" + denied + `:1): Sidecar.networking.istio.io "broken" is invalid: spec.egress[0].hostz: Forbidden: [SW0002] unknown field; known fields here: bind, captureMode, hosts, port`,
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")); diff != "" {
		t.Errorf("output lines (-want +got):\n%s", diff)
	}
	line := regexp.MustCompile(`^((ALLOWED|DENIED) Sidecar [^ /]+/[^ ]+ \([^ ]+:[0-9]+\)(: .+)?|    warning: .+)$`)
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if !line.MatchString(l) {
			t.Errorf("line does not follow the text format: %q", l)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	allowed := checkFile(t, "allowed.yaml", checkAllowedSidecar)
	denied := checkFile(t, "denied.yaml", checkDeniedSidecar)
	code, stdout, _ := runCLI(t, "", "check", "-o", "json", allowed, denied)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("output is not a JSON array of objects: %v\n%s", err, stdout)
	}
	if len(out) != 2 {
		t.Fatalf("want 2 decisions, got %d", len(out))
	}
	wantKeys := []string{"allowed", "apiVersion", "errors", "file", "findings", "kind", "line", "message", "name", "namespace", "warnings"}
	for i, d := range out {
		var keys []string
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if diff := cmp.Diff(wantKeys, keys); diff != "" {
			t.Errorf("decision %d keys (-want +got):\n%s", i, diff)
		}
		for _, key := range []string{"errors", "warnings", "findings"} {
			if _, ok := d[key].([]any); !ok {
				t.Errorf("decision %d: %s is %#v, want an array", i, key, d[key])
			}
		}
	}
	want := []map[string]any{
		{
			"kind": "Sidecar", "apiVersion": "networking.istio.io/v1", "namespace": "prod", "name": "default",
			"file": allowed, "line": 1.0, "allowed": true, "message": "", "errors": []any{},
			"warnings": []any{`spec.egress[0].hosts[1]: [SW0406] duplicated egress host "./*"`},
			// The second "./*" is written on line 10, column 7.
			"findings": []any{map[string]any{
				"rule": "SW0406", "severity": "warning", "field": "spec.egress[0].hosts[1]", "line": 10.0, "column": 7.0,
				"message": `spec.egress[0].hosts[1]: [SW0406] duplicated egress host "./*"`,
			}},
		},
		{
			"kind": "Sidecar", "apiVersion": "networking.istio.io/v1", "namespace": "prod", "name": "broken",
			"file": denied, "line": 1.0, "allowed": false,
			"message":  `Sidecar.networking.istio.io "broken" is invalid: spec.egress[0].hostz: Forbidden: [SW0002] unknown field; known fields here: bind, captureMode, hosts, port`,
			"errors":   []any{`spec.egress[0].hostz: Forbidden: [SW0002] unknown field; known fields here: bind, captureMode, hosts, port`},
			"warnings": []any{},
			"findings": []any{map[string]any{
				"rule": "SW0002", "severity": "error", "field": "spec.egress[0].hostz", "line": 8.0, "column": 5.0,
				"message": `spec.egress[0].hostz: Forbidden: [SW0002] unknown field; known fields here: bind, captureMode, hosts, port`,
			}},
		},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
}

func TestCheckJSONEmpty(t *testing.T) {
	code, stdout, _ := runCLI(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n", "check", "-o", "json", "-")
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if strings.TrimSpace(stdout) != "[]" {
		t.Errorf("no Sidecars must print an empty array, got %q", stdout)
	}
}

// TestCheckReferenceGolden pins the whole text output for the reference
// examples: what a CI log shows. Regenerate with `go test -run
// TestCheckReferenceGolden -update`.
func TestCheckReferenceGolden(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "check", "--root-namespace", "istio-config", checkReferenceDir)
	if code != 1 {
		t.Errorf("exit code %d, want 1 (partial-ip-tables conflicts with no-ip-tables)\nstderr: %s", code, stderr)
	}
	golden := filepath.Join("testdata", "check-reference.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), stdout); diff != "" {
		t.Errorf("output (-golden +got):\n%s", diff)
	}
}

// TestPreflightOutput pins the pre-flight (`check --cluster` without files)
// as an admin reads it: the Sidecars that would be denied grouped by
// namespace, each reason on its own line, a summary line, and the exit code.
func TestPreflightOutput(t *testing.T) {
	decode := func(namespace, name, spec string) *sidecar.Sidecar {
		s, errs := sidecar.Decode([]byte(`{"metadata":{"name":"` + name + `","namespace":"` + namespace + `"},"spec":` + spec + `}`))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return s
	}
	view := func(stored []*sidecar.Sidecar) *clusterview.Memory {
		m := clusterview.NewMemory("istio-system")
		for _, s := range stored {
			m.EnsureNamespaceLabelled(s.Namespace, map[string]string{"istio-injection": "enabled"})
			m.PutSidecar(clusterview.RefOf(s))
		}
		return m
	}
	wide := `{"egress":[{"hosts":["./*"]}]}`
	clean := []*sidecar.Sidecar{decode("web", "default", wide), decode("api", "default", wide)}
	broken := append(slices.Clone(clean),
		decode("web", "second", wide),
		decode("api", "legacy", `{"workloadSelector":{"labels":{"app":"api"}},"egress":[{"bind":"127.0.0.1","hosts":["./*"]}],"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"},"defaultEndpoint":":18082"}]}`),
	)
	cases := []struct {
		name     string
		stored   []*sidecar.Sidecar
		wantCode int
		want     string
	}{
		{name: "clean", stored: clean, wantCode: 0, want: "2 Sidecars checked, none would be denied\n"},
		{name: "empty cluster", wantCode: 0, want: "0 Sidecars checked, none would be denied\n"},
		{name: "broken", stored: broken, wantCode: 1, want: `namespace api:
  Sidecar legacy would be denied if created today:
    - spec.ingress[0].defaultEndpoint: Invalid value: ":18082": [SW0209] must forward to a loopback or wildcard address or a Unix domain socket; allowed forms: 127.0.0.1:PORT, [::1]:PORT, 0.0.0.0:PORT, [::]:PORT (PORT 1-65535), unix:///absolute/path or unix://@abstract-name
    - spec.egress[0].port: Required value: [SW0301] a port is required when bind is set (use port number 0 with a unix:// bind)
namespace web:
  Sidecar default would be denied if created today:
    - spec.workloadSelector: Forbidden: [SW1001] namespace "web" already has a Sidecar without workloadSelector: web/second; only one namespace-wide Sidecar is allowed per namespace (Istio's behaviour with two is undefined); add a workloadSelector or change web/second instead
  Sidecar second would be denied if created today:
    - spec.workloadSelector: Forbidden: [SW1001] namespace "web" already has a Sidecar without workloadSelector: web/default; only one namespace-wide Sidecar is allowed per namespace (Istio's behaviour with two is undefined); add a workloadSelector or change web/default instead
4 Sidecars checked, 3 would be denied
They keep working under enforcement=deny: an update that leaves these problems as they are is admitted with a warning; a new Sidecar like them, or a change to such a field, is denied.
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			decisions := offline.Preflight(tc.stored, view(tc.stored))
			var stdout, stderr bytes.Buffer
			if code := writePreflight(&stdout, &stderr, "text", decisions); code != tc.wantCode {
				t.Errorf("exit code %d, want %d (%s)", code, tc.wantCode, stderr.String())
			}
			if diff := cmp.Diff(tc.want, stdout.String()); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}

			stdout.Reset()
			if code := writePreflight(&stdout, &stderr, "json", decisions); code != tc.wantCode {
				t.Errorf("json: exit code %d, want %d", code, tc.wantCode)
			}
			var out []offline.Decision
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
				t.Fatalf("json: %v\n%s", err, stdout.String())
			}
			if len(out) != len(tc.stored) {
				t.Errorf("json: %d elements, want one per stored Sidecar (%d)", len(out), len(tc.stored))
			}

			// SARIF and JUnit: every Sidecar checked, as in JSON.
			stdout.Reset()
			if code := writePreflight(&stdout, &stderr, "junit", decisions); code != tc.wantCode {
				t.Errorf("junit: exit code %d, want %d", code, tc.wantCode)
			}
			var suites struct {
				Tests    int `xml:"tests,attr"`
				Failures int `xml:"failures,attr"`
			}
			if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
				t.Fatalf("junit: %v\n%s", err, stdout.String())
			}
			if suites.Tests != len(tc.stored) || (suites.Failures > 0) != (tc.wantCode == 1) {
				t.Errorf("junit: %d tests, %d failures; want %d tests, failures only when some would be denied", suites.Tests, suites.Failures, len(tc.stored))
			}
			stdout.Reset()
			if code := writePreflight(&stdout, &stderr, "sarif", decisions); code != tc.wantCode {
				t.Errorf("sarif: exit code %d, want %d", code, tc.wantCode)
			}
			if !json.Valid(stdout.Bytes()) || !strings.Contains(stdout.String(), `"version": "2.1.0"`) {
				t.Errorf("sarif: not a SARIF 2.1.0 log:\n%s", stdout.String())
			}
		})
	}
}

// TestCheckClusterDomain: Service host names end in the cluster's domain,
// --cluster-domain.
func TestCheckClusterDomain(t *testing.T) {
	manifests := `apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: prod}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: prod}
spec:
  egress:
  - hosts: ["./ratings.prod.svc.corp.example"]
`
	path := checkFile(t, "domain.yaml", manifests)
	_, stdout, _ := runCLI(t, "", "check", path)
	if !strings.Contains(stdout, "[SW1011]") {
		t.Errorf("with the default domain cluster.local the host should not be found:\n%s", stdout)
	}
	_, stdout, _ = runCLI(t, "", "check", "--cluster-domain", "corp.example", path)
	if strings.Contains(stdout, "[SW1011]") {
		t.Errorf("with --cluster-domain corp.example the Service provides the host:\n%s", stdout)
	}
}

// TestCheckCIFormats: -o sarif and -o junit keep check's exit codes and
// print only the report on stdout; SARIF names the files relative to the
// working directory.
func TestCheckCIFormats(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll("deploy", 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"deploy/allowed.yaml": checkAllowedSidecar, "deploy/denied.yaml": checkDeniedSidecar} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		format   string
		args     []string
		wantCode int
		want     []string
	}{
		{"sarif", []string{"deploy/allowed.yaml"}, 0, []string{`"ruleId": "SW0406"`, `"level": "warning"`, `"uri": "deploy/allowed.yaml"`}},
		{"sarif", []string{"deploy"}, 1, []string{`"ruleId": "SW0002"`, `"level": "error"`, `"uri": "deploy/denied.yaml"`, `"startLine": 8`}},
		{"junit", []string{"deploy/allowed.yaml"}, 0, []string{`tests="1" failures="0"`, "<system-out>warning: "}},
		{"junit", []string{"deploy"}, 1, []string{`tests="2" failures="1"`, `<failure message="Sidecar.networking.istio.io &#34;broken&#34; is invalid`}},
	} {
		code, stdout, stderr := runCLI(t, "", append([]string{"check", "-o", tc.format}, tc.args...)...)
		if code != tc.wantCode || stderr != "" {
			t.Errorf("-o %s %v: exit code %d (stderr %q), want %d", tc.format, tc.args, code, stderr, tc.wantCode)
		}
		for _, want := range tc.want {
			if !strings.Contains(stdout, want) {
				t.Errorf("-o %s %v: output lacks %s:\n%s", tc.format, tc.args, want, stdout)
			}
		}
	}
}
