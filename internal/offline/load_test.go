package offline_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
)

// writeTree writes files (relative path → content) under a fresh directory
// and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func namespaceDoc(name string) string {
	return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n"
}

// docRef is what the Load tests compare of each document.
type docRef struct {
	File, Kind, Namespace, Name string
	Line                        int
}

func refs(dir string, docs []offline.Document) []docRef {
	var out []docRef
	for _, d := range docs {
		file := d.File
		if rel, err := filepath.Rel(dir, d.File); err == nil && dir != "" {
			file = filepath.ToSlash(rel)
		}
		out = append(out, docRef{File: file, Kind: d.Kind, Namespace: d.Namespace, Name: d.Name, Line: d.Line})
	}
	return out
}

func TestLoadDirectory(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"b.yaml":         namespaceDoc("b"),
		"a/z.yml":        namespaceDoc("az"),
		"a/b.json":       `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ab"}}`,
		"a/deeper/c.yml": namespaceDoc("adc"),
		"c.txt":          namespaceDoc("ignored-txt"),
		"README.md":      "# not a manifest\n",
		"d.YAML":         namespaceDoc("upper-case-extension"),
		"e.yaml.bak":     namespaceDoc("ignored-bak"),
	})
	docs, err := offline.Load([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []docRef{
		{File: "a/b.json", Kind: "Namespace", Name: "ab", Line: 1},
		{File: "a/deeper/c.yml", Kind: "Namespace", Name: "adc", Line: 1},
		{File: "a/z.yml", Kind: "Namespace", Name: "az", Line: 1},
		{File: "b.yaml", Kind: "Namespace", Name: "b", Line: 1},
		{File: "d.YAML", Kind: "Namespace", Name: "upper-case-extension", Line: 1},
	}
	if diff := cmp.Diff(want, refs(dir, docs)); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
}

func TestLoadPathsInOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"one.yaml": namespaceDoc("one"),
		"two.txt":  namespaceDoc("two"), // named explicitly: read whatever its extension
	})
	stdin := strings.NewReader(namespaceDoc("from-stdin"))
	docs, err := offline.Load([]string{filepath.Join(dir, "two.txt"), "-", filepath.Join(dir, "one.yaml")}, stdin)
	if err != nil {
		t.Fatal(err)
	}
	want := []docRef{
		{File: "two.txt", Kind: "Namespace", Name: "two", Line: 1},
		{File: "-", Kind: "Namespace", Name: "from-stdin", Line: 1},
		{File: "one.yaml", Kind: "Namespace", Name: "one", Line: 1},
	}
	got := refs(dir, docs)
	got[1].File = docs[1].File // "-" is not under dir
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
}

func TestLoadStream(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  []docRef
	}{
		{
			name: "multi-document YAML with line numbers",
			input: "# leading comment\n" + // 1
				namespaceDoc("a") + // 2-5
				"---\n" + // 6
				"\n" + // 7
				"# about b\n" + // 8
				"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: nb\n" + // 9-13
				"---\n" + // 14
				"---\n" + // 15
				"--- # comment after the separator\n" + // 16
				namespaceDoc("c"), // 17-20
			want: []docRef{
				{File: "-", Kind: "Namespace", Name: "a", Line: 2},
				{File: "-", Kind: "ConfigMap", Namespace: "nb", Name: "b", Line: 9},
				{File: "-", Kind: "Namespace", Name: "c", Line: 17},
			},
		},
		{
			name:  "leading separator",
			input: "---\n" + namespaceDoc("a") + "---\n" + namespaceDoc("b"),
			want: []docRef{
				{File: "-", Kind: "Namespace", Name: "a", Line: 2},
				{File: "-", Kind: "Namespace", Name: "b", Line: 7},
			},
		},
		{
			name:  "empty documents are skipped",
			input: "---\n# only a comment\n---\n\n---\nnull\n---\n~\n---\n" + namespaceDoc("a"),
			want: []docRef{
				{File: "-", Kind: "Namespace", Name: "a", Line: 10},
			},
		},
		{name: "empty input", input: ""},
		{name: "only comments", input: "# nothing\n# here\n"},
		{
			name: "List is expanded",
			input: "apiVersion: v1\nkind: List\nitems:\n" +
				"- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: a\n" +
				"- apiVersion: networking.istio.io/v1\n  kind: Sidecar\n  metadata:\n    name: s\n    namespace: a\n  spec: {}\n",
			want: []docRef{
				{File: "-", Kind: "Namespace", Name: "a", Line: 1},
				{File: "-", Kind: "Sidecar", Namespace: "a", Name: "s", Line: 1},
			},
		},
		{
			name:  "typed list is expanded",
			input: `{"apiVersion":"networking.istio.io/v1","kind":"SidecarList","items":[{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"x"}}]}`,
			want:  []docRef{{File: "-", Kind: "Sidecar", Name: "x", Line: 1}},
		},
		{
			name:  "empty List",
			input: "apiVersion: v1\nkind: List\nitems: []\n",
		},
		{
			name:  "JSON document",
			input: "{\"apiVersion\":\"v1\",\n\"kind\":\"Namespace\",\"metadata\":{\"name\":\"j\"}}\n",
			want:  []docRef{{File: "-", Kind: "Namespace", Name: "j", Line: 1}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := offline.Load([]string{"-"}, strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, refs("", docs), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("documents (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadJSONIsTheObject(t *testing.T) {
	docs, err := offline.Load([]string{"-"}, strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n    x: \"1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("want one document, got %d", len(docs))
	}
	want := `{"apiVersion":"v1","kind":"Namespace","metadata":{"labels":{"x":"1"},"name":"a"}}`
	if got := string(docs[0].JSON); got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	if got := docs[0].Location(); got != "-:1" {
		t.Errorf("Location = %q, want -:1", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"bad.yaml":    namespaceDoc("ok") + "---\n" + namespaceDoc("ok2") + "---\napiVersion: v1\nkind: [\n",
		"nokind.yaml": "apiVersion: v1\nmetadata:\n  name: x\n",
		"scalar.yaml": namespaceDoc("ok") + "---\njust a string\n",
		"sep.yaml":    namespaceDoc("ok") + "--- not a comment\n",
		"list.yaml":   "apiVersion: v1\nkind: List\nitems:\n- 3\n",
	})
	cases := []struct {
		name      string
		paths     []string
		wantFile  string
		wantLine  int
		wantInErr string
	}{
		{name: "YAML syntax error", paths: []string{filepath.Join(dir, "bad.yaml")}, wantFile: filepath.Join(dir, "bad.yaml"), wantLine: 11, wantInErr: "parsing the document"},
		{name: "document without kind", paths: []string{filepath.Join(dir, "nokind.yaml")}, wantFile: filepath.Join(dir, "nokind.yaml"), wantLine: 1, wantInErr: "no kind"},
		{name: "document that is not an object", paths: []string{filepath.Join(dir, "scalar.yaml")}, wantFile: filepath.Join(dir, "scalar.yaml"), wantLine: 6, wantInErr: "not an object"},
		{name: "list item that is not an object", paths: []string{filepath.Join(dir, "list.yaml")}, wantFile: filepath.Join(dir, "list.yaml"), wantLine: 1, wantInErr: "not an object"},
		{name: "invalid separator", paths: []string{filepath.Join(dir, "sep.yaml")}, wantFile: filepath.Join(dir, "sep.yaml"), wantInErr: "separator"},
		{name: "missing file", paths: []string{filepath.Join(dir, "missing.yaml")}, wantFile: filepath.Join(dir, "missing.yaml"), wantInErr: "no such file"},
		{name: "error inside a directory", paths: []string{dir}, wantFile: filepath.Join(dir, "bad.yaml"), wantLine: 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := offline.Load(tc.paths, nil)
			if err == nil {
				t.Fatalf("want an error, got %d documents", len(docs))
			}
			var re *offline.ReadError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *ReadError", err, err)
			}
			if re.File != tc.wantFile || (tc.wantLine != 0 && re.Line != tc.wantLine) {
				t.Errorf("error at %s:%d, want %s:%d (%v)", re.File, re.Line, tc.wantFile, tc.wantLine, err)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantInErr)
			}
			if tc.wantLine != 0 && !strings.HasPrefix(err.Error(), tc.wantFile+":"+itoa(tc.wantLine)+": ") {
				t.Errorf("error %q does not start with file:line", err)
			}
		})
	}
	t.Run("missing file unwraps to fs.ErrNotExist", func(t *testing.T) {
		_, err := offline.Load([]string{filepath.Join(dir, "missing.yaml")}, nil)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
		}
	})
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

func TestReadErrorText(t *testing.T) {
	cases := []struct {
		err  *offline.ReadError
		want string
	}{
		{err: &offline.ReadError{File: "a.yaml", Line: 3, Err: errors.New("boom")}, want: "a.yaml:3: boom"},
		{err: &offline.ReadError{File: "a.yaml", Err: errors.New("boom")}, want: "a.yaml: boom"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
