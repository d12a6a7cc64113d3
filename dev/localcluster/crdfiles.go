package localcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// topLevelKind matches a document's own kind (nested kinds are indented).
var topLevelKind = regexp.MustCompile(`(?m)^kind:[ \t]*["']?([A-Za-z0-9]+)`)

const crdKind = "CustomResourceDefinition"

// splitCRDPaths checks every path up front (so a typo fails before any
// process starts) and sorts them: directories and files holding only CRD
// documents are handed to envtest as paths; from files that mix in other
// kinds (or whose extension envtest would ignore) only the CRD documents are
// decoded here, so an unrelated document can never break envtest's decoding.
func splitCRDPaths(paths []string) (direct []string, decoded []*apiextensionsv1.CustomResourceDefinition, err error) {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("CRD path: %w", err)
		}
		ext := filepath.Ext(p)
		if fi.IsDir() || ext == ".json" {
			direct = append(direct, p)
			continue
		}
		docs, err := readYAMLDocuments(p)
		if err != nil {
			return nil, nil, fmt.Errorf("CRD file %s: %w", p, err)
		}
		mixed, ncrd := false, 0
		for _, d := range docs {
			switch kindOf(d) {
			case "":
			case crdKind:
				ncrd++
			default:
				mixed = true
			}
		}
		if ncrd == 0 {
			return nil, nil, fmt.Errorf("CRD file %s holds no %s documents", p, crdKind)
		}
		// envtest reads only .yaml/.yml/.json files.
		if !mixed && (ext == ".yaml" || ext == ".yml") {
			direct = append(direct, p)
			continue
		}
		for i, d := range docs {
			if kindOf(d) != crdKind {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.Unmarshal(d, crd); err != nil {
				return nil, nil, fmt.Errorf("CRD file %s, document %d: %w", p, i+1, err)
			}
			decoded = append(decoded, crd)
		}
	}
	return direct, decoded, nil
}

func kindOf(doc []byte) string {
	m := topLevelKind.FindSubmatch(doc)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func readYAMLDocuments(p string) ([][]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
}
