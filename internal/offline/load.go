// Package offline makes the webhook's decisions without a cluster: it reads
// YAML/JSON manifests (a GitOps repository, a CI artefact), builds the cluster
// state from the non-Sidecar objects, then admits the Sidecars one by one in
// input order through the same validation.Decide the webhook calls.
package offline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Document is one object read from the input.
type Document struct {
	// File is the path as given (or "-" for standard input).
	File string
	// Line is the line in File where the document starts (1-based).
	Line int
	// JSON is the object in JSON form.
	JSON []byte
	// APIVersion, Kind, Namespace and Name are read from the object.
	APIVersion, Kind, Namespace, Name string

	// source is the document's text as read (YAML or JSON), which Position
	// searches; sourceLine is the line in File where it starts (Line is
	// where its content starts, after comments and separators); item is the
	// index of this object in a kind: List document, or -1.
	source     []byte
	sourceLine int
	item       int
}

// Location names the document for messages: "dir/a.yaml:14".
func (d Document) Location() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// ReadError is a problem reading or parsing the input (exit code 2).
type ReadError struct {
	File string
	Line int
	Err  error
}

func (e *ReadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

var manifestExtensions = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// Load reads every path in order. A directory is walked recursively in
// lexical order, taking .yaml, .yml and .json files; "-" reads stdin once.
func Load(paths []string, stdin io.Reader) ([]Document, error) {
	var docs []Document
	for _, p := range paths {
		if p == "-" {
			ds, err := parseStream("-", stdin)
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, &ReadError{File: p, Err: errors.Unwrap(err)}
		}
		files := []string{p}
		if info.IsDir() {
			if files, err = manifestFiles(p); err != nil {
				return nil, err
			}
		}
		for _, f := range files {
			ds, err := parseFile(f)
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
		}
	}
	return docs, nil
}

func manifestFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return &ReadError{File: path, Err: err}
		}
		if !d.IsDir() && manifestExtensions[strings.ToLower(filepath.Ext(path))] {
			files = append(files, path)
		}
		return nil
	})
	// The order is the lexical order of the full paths, the same for every
	// run and every machine (WalkDir's own order differs for names such as
	// "a-b/x" and "a/x").
	sort.Strings(files)
	return files, err
}

func parseFile(path string) ([]Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ReadError{File: path, Err: errors.Unwrap(err)}
	}
	defer f.Close()
	return parseStream(path, f)
}

// parseStream splits a multi-document YAML (or JSON) stream and converts
// each document to JSON, remembering where it starts for error messages.
func parseStream(name string, r io.Reader) ([]Document, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs []Document
	line := 1
	for {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, &ReadError{File: name, Line: line, Err: err}
		}
		chunkLine, start := line, line+leadingLines(chunk)
		// The reader consumes the "---" line that ends a document without
		// returning it, so count it here; after the last document there is
		// no next start to get wrong.
		line += bytes.Count(chunk, []byte("\n")) + 1
		if isBlank(chunk) {
			continue
		}
		js, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			return nil, &ReadError{File: name, Line: start, Err: fmt.Errorf("parsing the document that starts here: %v", err)}
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue
		}
		items, list, err := expandLists(js)
		if err != nil {
			return nil, &ReadError{File: name, Line: start, Err: err}
		}
		for i, item := range items {
			d := Document{File: name, Line: start, JSON: item, source: chunk, sourceLine: chunkLine, item: -1}
			if list {
				d.item = i
			}
			var head struct {
				APIVersion any `json:"apiVersion"`
				Kind       any `json:"kind"`
				Metadata   any `json:"metadata"`
			}
			if err := json.Unmarshal(item, &head); err != nil {
				return nil, &ReadError{File: name, Line: start, Err: fmt.Errorf("the document is not an object: %v", err)}
			}
			d.APIVersion, _ = head.APIVersion.(string)
			d.Kind, _ = head.Kind.(string)
			if meta, ok := head.Metadata.(map[string]any); ok {
				d.Namespace, _ = meta["namespace"].(string)
				d.Name, _ = meta["name"].(string)
			}
			if d.Kind == "" {
				return nil, &ReadError{File: name, Line: start, Err: fmt.Errorf("the document has no kind")}
			}
			docs = append(docs, d)
		}
	}
}

// expandLists turns a `kind: List` (what `kubectl get -o yaml` prints) into
// its items (list is true); any other object is returned as is.
func expandLists(js []byte) (items [][]byte, list bool, err error) {
	var l struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(js, &l); err != nil || !strings.HasSuffix(l.Kind, "List") || l.Items == nil {
		return [][]byte{js}, false, nil
	}
	out := make([][]byte, 0, len(l.Items))
	for _, it := range l.Items {
		out = append(out, it)
	}
	return out, true, nil
}

func leadingLines(chunk []byte) int {
	n := 0
	for _, l := range bytes.SplitAfter(chunk, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) == 0 || t[0] == '#' || bytes.Equal(t, []byte("---")) {
			n++
			continue
		}
		break
	}
	return n
}

func isBlank(chunk []byte) bool {
	for _, l := range bytes.Split(chunk, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) != 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			return false
		}
	}
	return true
}
