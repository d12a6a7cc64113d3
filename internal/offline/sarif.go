package offline

import (
	"encoding/json"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/rules"
)

// What the SARIF output says about the tool.
const (
	// ToolName is the SARIF tool.driver.name.
	ToolName = "sidecar-webhook"
	// ToolURI is the project's home, tool.driver.informationUri.
	ToolURI = "https://github.com/sidecar-webhook/sidecar-webhook"
	// RulesHelpURI documents every rule ID: each SARIF rule's helpUri.
	RulesHelpURI = ToolURI + "/blob/main/docs/rules.md#rule-ids"

	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
	// srcRoot is the base of the artifact URIs: the working directory, which
	// is the repository root when CI runs check there.
	srcRoot = "%SRCROOT%"
)

// The subset of SARIF 2.1.0 that check writes.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool               sarifTool                        `json:"tool"`
		OriginalURIBaseIDs map[string]sarifArtifactLocation `json:"originalUriBaseIds,omitempty"`
		ColumnKind         string                           `json:"columnKind"`
		Results            []sarifResult                    `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		InformationURI string      `json:"informationUri"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string            `json:"id"`
		ShortDescription     sarifText         `json:"shortDescription"`
		DefaultConfiguration sarifRuleConfig   `json:"defaultConfiguration"`
		HelpURI              string            `json:"helpUri"`
		Properties           map[string]string `json:"properties"`
	}
	sarifRuleConfig struct {
		Level string `json:"level"`
	}
	sarifText struct {
		Text string `json:"text"`
	}
	sarifResult struct {
		RuleID    string          `json:"ruleId,omitempty"`
		RuleIndex *int            `json:"ruleIndex,omitempty"`
		Level     string          `json:"level"`
		Message   sarifText       `json:"message"`
		Locations []sarifLocation `json:"locations"`
	}
	sarifLocation struct {
		PhysicalLocation *sarifPhysicalLocation `json:"physicalLocation,omitempty"`
		LogicalLocations []sarifLogicalLocation `json:"logicalLocations"`
	}
	sarifPhysicalLocation struct {
		ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
		Region           *sarifRegion          `json:"region,omitempty"`
	}
	sarifArtifactLocation struct {
		URI       string `json:"uri"`
		URIBaseID string `json:"uriBaseId,omitempty"`
	}
	sarifRegion struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn,omitempty"`
	}
	sarifLogicalLocation struct {
		Name               string `json:"name"`
		FullyQualifiedName string `json:"fullyQualifiedName"`
		Kind               string `json:"kind"`
	}
)

// WriteSARIF writes decisions as a SARIF 2.1.0 log with one run: the rule
// catalog as the tool's rules, and one result per reason of a denial (level
// error) and per warning (level warning), located at the line and column
// where its field is written. File paths under workDir are written relative
// to it (uriBaseId %SRCROOT%), others as absolute file URIs; standard input
// and objects read from the cluster get only a logical location, the
// Sidecar's namespace/name.
func WriteSARIF(w io.Writer, decisions []Decision, workDir string) error {
	catalog := rules.All()
	index := make(map[rules.ID]int, len(catalog))
	run := sarifRun{
		Tool:       sarifTool{Driver: sarifDriver{Name: ToolName, InformationURI: ToolURI, Rules: make([]sarifRule, 0, len(catalog))}},
		ColumnKind: "unicodeCodePoints",
		Results:    []sarifResult{},
	}
	for i, r := range catalog {
		index[r.ID] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID:                   string(r.ID),
			ShortDescription:     sarifText{Text: r.Summary},
			DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(r.Severity)},
			HelpURI:              RulesHelpURI,
			Properties:           map[string]string{"source": r.Source},
		})
	}
	relative := false
	for _, d := range decisions {
		uri, isRelative := artifactURI(d.File, workDir)
		relative = relative || isRelative
		for _, f := range d.Findings {
			result := sarifResult{
				RuleID:  string(f.Rule),
				Level:   sarifLevel(f.Severity),
				Message: sarifText{Text: d.Kind + " " + d.Namespace + "/" + d.Name + ": " + f.Message},
			}
			if i, ok := index[f.Rule]; ok {
				result.RuleIndex = &i
			}
			loc := sarifLocation{LogicalLocations: []sarifLogicalLocation{{
				Name: d.Namespace + "/" + d.Name, FullyQualifiedName: d.APIVersion + "/" + d.Kind + "/" + d.Namespace + "/" + d.Name, Kind: "resource",
			}}}
			if uri != "" {
				loc.PhysicalLocation = &sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: uri}}
				if isRelative {
					loc.PhysicalLocation.ArtifactLocation.URIBaseID = srcRoot
				}
				line, column := f.Line, f.Column
				if line == 0 {
					line, column = d.Line, 1
				}
				if line > 0 {
					loc.PhysicalLocation.Region = &sarifRegion{StartLine: line, StartColumn: max(column, 1)}
				}
			}
			result.Locations = []sarifLocation{loc}
			run.Results = append(run.Results, result)
		}
	}
	if relative && filepath.IsAbs(workDir) {
		run.OriginalURIBaseIDs = map[string]sarifArtifactLocation{srcRoot: {URI: fileURI(workDir) + "/"}}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

func sarifLevel(s rules.Severity) string {
	if s == rules.Error {
		return "error"
	}
	return "warning"
}

// artifactURI names file for SARIF: relative to workDir when it lies
// inside it (relative is true), else an absolute file URI; "" for standard
// input and the cluster.
func artifactURI(file, workDir string) (uri string, relative bool) {
	if file == "-" || file == ClusterFile || file == "" {
		return "", false
	}
	abs := file
	if !filepath.IsAbs(abs) && workDir != "" {
		abs = filepath.Join(workDir, file)
	}
	if workDir != "" {
		if rel, err := filepath.Rel(workDir, abs); err == nil && filepath.IsLocal(rel) {
			return (&url.URL{Path: filepath.ToSlash(rel)}).String(), true
		}
	}
	if !filepath.IsAbs(abs) {
		// No working directory to anchor it: as given.
		return (&url.URL{Path: filepath.ToSlash(filepath.Clean(file))}).String(), true
	}
	return fileURI(abs), false
}

func fileURI(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}
