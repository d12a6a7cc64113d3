package offline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// The SARIF 2.1.0 JSON schema (OASIS, errata 01) ships inside this module,
// as the constant `schema` of the file below; the test downloads the module
// into the module cache and reads it from there rather than keeping a copy.
const (
	sarifSchemaModule  = "github.com/owenrumney/go-sarif/v3"
	sarifSchemaVersion = "v3.3.1"
	sarifSchemaFile    = "pkg/report/v210/sarif/schema.go"
)

var sarifSchemaOnce struct {
	sync.Once
	schema *jsonschema.Schema
	err    error
}

// sarifSchema compiles the SARIF 2.1.0 schema, with format assertions on
// (helpUri must be a URI, artifact URIs URI references).
func sarifSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	sarifSchemaOnce.Do(func() {
		text, err := sarifSchemaText()
		if err != nil {
			sarifSchemaOnce.err = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
		if err != nil {
			sarifSchemaOnce.err = fmt.Errorf("the SARIF schema is not JSON: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		const url = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
		if err := c.AddResource(url, doc); err != nil {
			sarifSchemaOnce.err = err
			return
		}
		sarifSchemaOnce.schema, sarifSchemaOnce.err = c.Compile(url)
	})
	if sarifSchemaOnce.err != nil {
		t.Fatal(sarifSchemaOnce.err)
	}
	return sarifSchemaOnce.schema
}

// sarifSchemaText reads the schema out of the module's Go source.
func sarifSchemaText() (string, error) {
	path, err := crds.DownloadedFile(context.Background(), sarifSchemaModule, sarifSchemaVersion, sarifSchemaFile)
	if err != nil {
		return "", err
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		return "", err
	}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			if len(vs.Names) == 1 && vs.Names[0].Name == "schema" && len(vs.Values) == 1 {
				if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					return strconv.Unquote(lit.Value)
				}
			}
		}
	}
	return "", fmt.Errorf("%s: no string constant named schema", path)
}

// validateSARIF checks out against the SARIF 2.1.0 schema.
func validateSARIF(t *testing.T, out []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the SARIF output is not JSON: %v\n%s", err, out)
	}
	if err := sarifSchema(t).Validate(doc); err != nil {
		t.Fatalf("the SARIF output breaks the SARIF 2.1.0 schema: %v", err)
	}
}

// reportInput is a repository with a denied Sidecar (a field error whose
// line is known), an admitted one with a warning, and a List.
const reportInput = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: broken
  namespace: prod
spec:
  egress:
  - bind: 127.0.0.1
    hosts:
    - ./*
---
apiVersion: networking.istio.io/v1
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

// reportDecisions checks reportInput as the file deploy/sidecars.yaml
// under a temporary working directory, plus a decision from the cluster.
func reportDecisions(t *testing.T) (decisions []offline.Decision, workDir string) {
	t.Helper()
	workDir = t.TempDir()
	path := filepath.Join(workDir, "deploy", "sidecars.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(reportInput), 0o600); err != nil {
		t.Fatal(err)
	}
	docs, err := offline.Load([]string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	decisions, err = offline.Check(docs, offline.Options{RootNamespace: "istio-system", Validation: validation.Options{Enforcement: validation.EnforcementDeny}})
	if err != nil {
		t.Fatal(err)
	}
	cluster := offline.Decision{Kind: "Sidecar", APIVersion: "networking.istio.io/v1", Namespace: "legacy", Name: "second", File: offline.ClusterFile,
		Message: "existing conflict: ...", Errors: []string{"spec.workloadSelector: Forbidden: [SW1001] ..."},
		Findings: []offline.Finding{{Rule: rules.SecondNamespaceWide, Severity: rules.Error, Field: "spec.workloadSelector", Message: "spec.workloadSelector: Forbidden: [SW1001] ..."}}}
	return append(decisions, cluster), workDir
}

// TestSARIF: the log validates against the SARIF 2.1.0 schema; the tool's
// rules are the catalog; there is one result per reason and per warning,
// with its rule, level, and the line and column of its field, the file
// relative to the working directory.
func TestSARIF(t *testing.T) {
	decisions, workDir := reportDecisions(t)
	var out bytes.Buffer
	if err := offline.WriteSARIF(&out, decisions, workDir); err != nil {
		t.Fatal(err)
	}
	validateSARIF(t, out.Bytes())

	var log struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string
					Rules []struct {
						ID                   string
						ShortDescription     struct{ Text string }
						DefaultConfiguration struct{ Level string }
						HelpURI              string `json:"helpUri"`
					}
				}
			}
			OriginalURIBaseIDs map[string]struct{ URI string } `json:"originalUriBaseIds"`
			Results            []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation *struct {
						ArtifactLocation struct {
							URI       string `json:"uri"`
							URIBaseID string `json:"uriBaseId"`
						}
						Region struct{ StartLine, StartColumn int }
					}
					LogicalLocations []struct{ Name string }
				}
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("version %q with %d runs, want 2.1.0 with one run", log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	catalog := rules.All()
	if len(run.Tool.Driver.Rules) != len(catalog) {
		t.Fatalf("%d rules, want the catalog's %d", len(run.Tool.Driver.Rules), len(catalog))
	}
	for i, r := range run.Tool.Driver.Rules {
		want := catalog[i]
		if r.ID != string(want.ID) || r.ShortDescription.Text != want.Summary || r.DefaultConfiguration.Level != string(want.Severity) ||
			r.HelpURI != "https://github.com/sidecar-webhook/sidecar-webhook/blob/main/docs/rules.md#rule-ids" {
			t.Errorf("rule %d: %+v, want %+v with helpUri docs/rules.md#rule-ids", i, r, want)
		}
	}
	if got := run.OriginalURIBaseIDs["%SRCROOT%"].URI; got != "file://"+filepath.ToSlash(workDir)+"/" {
		t.Errorf("%%SRCROOT%% is %q, want the working directory", got)
	}

	type result struct {
		Rule, Level, Message, URI string
		Line, Column              int
		Logical                   string
	}
	var got []result
	for _, r := range run.Results {
		if r.RuleIndex < 0 || r.RuleIndex >= len(catalog) || string(catalog[r.RuleIndex].ID) != r.RuleID {
			t.Errorf("result %s: ruleIndex %d does not point at its rule", r.RuleID, r.RuleIndex)
		}
		if len(r.Locations) != 1 || len(r.Locations[0].LogicalLocations) != 1 {
			t.Fatalf("result %s: locations %+v, want one with one logical location", r.RuleID, r.Locations)
		}
		res := result{Rule: r.RuleID, Level: r.Level, Message: r.Message.Text, Logical: r.Locations[0].LogicalLocations[0].Name}
		if p := r.Locations[0].PhysicalLocation; p != nil {
			if p.ArtifactLocation.URIBaseID != "%SRCROOT%" {
				t.Errorf("result %s: uriBaseId %q, want %%SRCROOT%%", r.RuleID, p.ArtifactLocation.URIBaseID)
			}
			res.URI, res.Line, res.Column = p.ArtifactLocation.URI, p.Region.StartLine, p.Region.StartColumn
		}
		got = append(got, res)
	}
	want := []result{
		// The missing port of spec.egress[0] points at that listener, whose
		// first key (bind) is on line 8, column 5.
		{Rule: "SW0301", Level: "error", URI: "deploy/sidecars.yaml", Line: 8, Column: 5, Logical: "prod/broken",
			Message: "Sidecar prod/broken: spec.egress[0].port: Required value: [SW0301] a port is required when bind is set (use port number 0 with a unix:// bind)"},
		// The second "./*" of the other document: line 21, column 7.
		{Rule: "SW0406", Level: "warning", URI: "deploy/sidecars.yaml", Line: 21, Column: 7, Logical: "prod/default",
			Message: `Sidecar prod/default: spec.egress[0].hosts[1]: [SW0406] duplicated egress host "./*"`},
		// From the cluster: no file.
		{Rule: "SW1001", Level: "error", Logical: "legacy/second",
			Message: "Sidecar legacy/second: spec.workloadSelector: Forbidden: [SW1001] ..."},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// TestSARIFSchemaIsNotVacuous: the schema check rejects what SARIF
// forbids, so TestSARIF's validation means something.
func TestSARIFSchemaIsNotVacuous(t *testing.T) {
	decisions, workDir := reportDecisions(t)
	var out bytes.Buffer
	if err := offline.WriteSARIF(&out, decisions, workDir); err != nil {
		t.Fatal(err)
	}
	for _, breakIt := range []struct{ from, to string }{
		{`"level": "error"`, `"level": "fatal"`},
		{`"version": "2.1.0"`, `"version": "2.0.0"`},
		{`"startLine": 8`, `"startLine": 0`},
		{`"ruleId"`, `"ruleID"`},
	} {
		broken := strings.Replace(out.String(), breakIt.from, breakIt.to, 1)
		if broken == out.String() {
			t.Fatalf("%s is not in the output", breakIt.from)
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(broken))
		if err != nil {
			t.Fatal(err)
		}
		if err := sarifSchema(t).Validate(doc); err == nil {
			t.Errorf("the schema accepts %s instead of %s", breakIt.to, breakIt.from)
		}
	}
}

// TestArtifactURIs: paths under the working directory are relative
// (as given or absolute), others absolute file URIs; standard input has
// no file.
func TestArtifactURIs(t *testing.T) {
	work := t.TempDir()
	cases := []struct {
		file, wantURI string
		wantBase      bool
	}{
		{file: "deploy/a.yaml", wantURI: "deploy/a.yaml", wantBase: true},
		{file: "./deploy/../x y.yaml", wantURI: "x%20y.yaml", wantBase: true},
		{file: filepath.Join(work, "abs", "b.yaml"), wantURI: "abs/b.yaml", wantBase: true},
		{file: "/elsewhere/c.yaml", wantURI: "file:///elsewhere/c.yaml"},
		{file: "../outside.yaml", wantURI: "file://" + filepath.ToSlash(filepath.Dir(work)) + "/outside.yaml"},
		{file: "-"},
	}
	for _, tc := range cases {
		d := offline.Decision{Kind: "Sidecar", Namespace: "ns", Name: "n", File: tc.file, Line: 3,
			Findings: []offline.Finding{{Rule: rules.EmptySpec, Severity: rules.Error, Message: "m"}}}
		var out bytes.Buffer
		if err := offline.WriteSARIF(&out, []offline.Decision{d}, work); err != nil {
			t.Fatal(err)
		}
		validateSARIF(t, out.Bytes())
		var log struct {
			Runs []struct {
				Results []struct {
					Locations []struct {
						PhysicalLocation *struct {
							ArtifactLocation struct{ URI, URIBaseID string }
							Region           struct{ StartLine, StartColumn int }
						}
					}
				}
			}
		}
		if err := json.Unmarshal(out.Bytes(), &log); err != nil {
			t.Fatal(err)
		}
		p := log.Runs[0].Results[0].Locations[0].PhysicalLocation
		switch {
		case tc.wantURI == "" && p != nil:
			t.Errorf("%s: a physical location %+v, want none", tc.file, p)
		case tc.wantURI == "":
		case p == nil:
			t.Errorf("%s: no physical location", tc.file)
		case p.ArtifactLocation.URI != tc.wantURI || (p.ArtifactLocation.URIBaseID != "") != tc.wantBase:
			t.Errorf("%s: uri %q (base %q), want %q (relative %v)", tc.file, p.ArtifactLocation.URI, p.ArtifactLocation.URIBaseID, tc.wantURI, tc.wantBase)
		case p.Region.StartLine != 3 || p.Region.StartColumn != 1:
			t.Errorf("%s: a finding without a line is at %d:%d, want the document's line 3:1", tc.file, p.Region.StartLine, p.Region.StartColumn)
		}
	}
}

// TestJUnit: one test case per Sidecar in a suite per file; a denied one
// fails with the denial and its reasons, warnings go to system-out.
func TestJUnit(t *testing.T) {
	decisions, workDir := reportDecisions(t)
	var out bytes.Buffer
	if err := offline.WriteJUnit(&out, decisions); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), xml.Header) {
		t.Errorf("no XML header:\n%s", out.String())
	}
	type testcase struct {
		Name      string `xml:"name,attr"`
		Classname string `xml:"classname,attr"`
		File      string `xml:"file,attr"`
		Line      int    `xml:"line,attr"`
		Failure   *struct {
			Message string `xml:"message,attr"`
			Type    string `xml:"type,attr"`
			Text    string `xml:",chardata"`
		} `xml:"failure"`
		SystemOut string `xml:"system-out"`
	}
	var parsed struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name     string     `xml:"name,attr"`
			Tests    int        `xml:"tests,attr"`
			Failures int        `xml:"failures,attr"`
			Cases    []testcase `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(out.Bytes(), &parsed); err != nil {
		t.Fatalf("the JUnit output is not XML: %v\n%s", err, out.String())
	}
	if parsed.Tests != 3 || parsed.Failures != 2 || len(parsed.Suites) != 2 {
		t.Fatalf("%d tests, %d failures in %d suites; want 3 tests, 2 failures, 2 suites (the file and the cluster):\n%s",
			parsed.Tests, parsed.Failures, len(parsed.Suites), out.String())
	}
	file := filepath.Join(workDir, "deploy", "sidecars.yaml")
	files, cluster := parsed.Suites[0], parsed.Suites[1]
	if files.Name != file || files.Tests != 2 || files.Failures != 1 || cluster.Name != "cluster" || cluster.Tests != 1 || cluster.Failures != 1 {
		t.Errorf("suites %q (%d tests, %d failures) and %q (%d, %d); want the file (2, 1) and cluster (1, 1)",
			files.Name, files.Tests, files.Failures, cluster.Name, cluster.Tests, cluster.Failures)
	}
	broken, allowed := files.Cases[0], files.Cases[1]
	if broken.Name != "Sidecar prod/broken (line 1)" || broken.Classname != file || broken.File != file || broken.Line != 1 {
		t.Errorf("denied case: %+v", broken)
	}
	if broken.Failure == nil || broken.Failure.Type != "denied" ||
		broken.Failure.Message != decisions[0].Message ||
		broken.Failure.Text != "spec.egress[0].port: Required value: [SW0301] a port is required when bind is set (use port number 0 with a unix:// bind)" {
		t.Errorf("denied case's failure: %+v", broken.Failure)
	}
	if allowed.Failure != nil || allowed.Name != "Sidecar prod/default (line 12)" ||
		allowed.SystemOut != `warning: spec.egress[0].hosts[1]: [SW0406] duplicated egress host "./*"` {
		t.Errorf("admitted case: %+v, want no failure and its warning in system-out", allowed)
	}
	if c := cluster.Cases[0]; c.Name != "Sidecar legacy/second" || c.File != "" || c.Failure == nil {
		t.Errorf("cluster case: %+v", c)
	}
}
