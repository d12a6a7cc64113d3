package offline

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Position returns where the field at fieldPath (as field.Path renders it:
// "spec.egress[0].port", "spec.workloadSelector.labels[app]") is written in
// the document's file: the line and column of its key, or of its entry in a
// list. A field that is not written (a Required value) gets the position of
// its closest written parent; an empty path the object's start (a document
// that cannot be searched: its first line, column 1). This is what CI tools
// (SARIF, GitHub code scanning) show a finding on.
func (d Document) Position(fieldPath string) (line, column int) {
	line, column = d.Line, 1
	if len(d.source) == 0 {
		return line, column
	}
	var root yaml.Node
	if err := yaml.Unmarshal(d.source, &root); err != nil || root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return line, column
	}
	steps := splitFieldPath(fieldPath)
	if d.item >= 0 {
		steps = append([]string{"items", "[" + strconv.Itoa(d.item) + "]"}, steps...)
	}
	node := root.Content[0]
	at := node
	for _, step := range steps {
		key, value := child(node, step)
		if value == nil {
			break
		}
		at, node = key, value
	}
	if d.item >= 0 && at == root.Content[0] {
		// Not even the list's item was found: stay at the document start.
		return line, column
	}
	return d.sourceLine + at.Line - 1, at.Column
}

// child finds step ("name" or "[0]" / "[key]") under node. For a mapping it
// returns the key node (where the field is written) and the value; for a
// sequence the entry twice.
func child(node *yaml.Node, step string) (key, value *yaml.Node) {
	for node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	name, bracketed := strings.CutPrefix(step, "[")
	if bracketed {
		name = strings.TrimSuffix(name, "]")
	}
	switch node.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == name {
				return node.Content[i], node.Content[i+1]
			}
		}
	case yaml.SequenceNode:
		i, err := strconv.Atoi(name)
		if bracketed && err == nil && i >= 0 && i < len(node.Content) {
			return node.Content[i], node.Content[i]
		}
	}
	return nil, nil
}

// splitFieldPath splits a rendered field.Path into its steps: names, and
// indexes or keys with their brackets. A key may hold dots
// ("labels[app.kubernetes.io/name]").
func splitFieldPath(p string) []string {
	var steps []string
	for p != "" {
		switch {
		case p[0] == '.':
			p = p[1:]
		case p[0] == '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return append(steps, p)
			}
			steps = append(steps, p[:end+1])
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			steps = append(steps, p[:end])
			p = p[end:]
		}
	}
	return steps
}
