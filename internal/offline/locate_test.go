package offline_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
)

// TestPosition: a field path is found where it is written, across
// documents, lists, JSON and flow style; what is not written points at its
// closest written parent.
func TestPosition(t *testing.T) {
	stream := "# a comment\n" + // 1
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n" + // 2-5
		"---\n" + // 6
		"# the Sidecar\n" + // 7
		"apiVersion: networking.istio.io/v1\n" + // 8
		"kind: Sidecar\n" + // 9
		"metadata:\n" + // 10
		"  name: s\n" + // 11
		"  namespace: prod\n" + // 12
		"spec:\n" + // 13
		"  workloadSelector:\n" + // 14
		"    labels:\n" + // 15
		"      app.kubernetes.io/name: x\n" + // 16
		"  egress:\n" + // 17
		"  - bind: 127.0.0.1\n" + // 18
		"    hosts: [\"./*\", \"*/a.b\"]\n" + // 19
		"  - {port: {number: 80}, hosts: [./*]}\n" + // 20
		"---\n" + // 21
		"apiVersion: v1\n" + // 22
		"kind: List\n" + // 23
		"items:\n" + // 24
		"- apiVersion: networking.istio.io/v1\n" + // 25
		"  kind: Sidecar\n" + // 26
		"  metadata: {name: first}\n" + // 27
		"- apiVersion: networking.istio.io/v1\n" + // 28
		"  kind: Sidecar\n" + // 29
		"  metadata:\n" + // 30
		"    name: second\n" + // 31
		"  spec:\n" + // 32
		"    egress: []\n" + // 33
		"---\n" + // 34
		"{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"Sidecar\",\n" + // 35
		" \"metadata\": {\"name\": \"json\"},\n" + // 36
		" \"spec\": {\"egress\": [{\"hosts\": [\"./*\"]}]}}\n" // 37
	docs, err := offline.Load([]string{"-"}, strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]offline.Document{}
	for _, d := range docs {
		byName[d.Name] = d
	}
	cases := []struct {
		doc, path string
		want      string // line:column
	}{
		{"s", "", "8:1"},
		{"s", "apiVersion", "8:1"},
		{"s", "metadata.name", "11:3"},
		{"s", "spec.workloadSelector.labels[app.kubernetes.io/name]", "16:7"},
		{"s", "spec.egress[0]", "18:5"},
		{"s", "spec.egress[0].bind", "18:5"},
		// Not written: the closest parent that is.
		{"s", "spec.egress[0].port", "18:5"},
		{"s", "spec.egress[0].hosts[1]", "19:20"},
		{"s", "spec.egress[1].port.number", "20:13"},
		{"s", "spec.egress[7].hosts", "17:3"},
		{"s", "spec.ingress", "13:1"},
		{"prod", "metadata.name", "5:3"},
		// Items of a List: searched under items[i].
		{"first", "metadata.name", "27:14"},
		{"second", "metadata.name", "31:5"},
		{"second", "spec.egress", "33:5"},
		{"second", "", "28:3"},
		{"json", "spec.egress[0].hosts[0]", "37:33"},
		{"json", "metadata", "36:2"},
	}
	for _, tc := range cases {
		d, ok := byName[tc.doc]
		if !ok {
			t.Fatalf("no document named %q", tc.doc)
		}
		line, column := d.Position(tc.path)
		if got := fmt.Sprintf("%d:%d", line, column); got != tc.want {
			t.Errorf("%s: Position(%q) = %s, want %s", tc.doc, tc.path, got, tc.want)
		}
	}
}
