package offline

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// The JUnit XML that CI systems (GitLab, Jenkins, Azure Pipelines, ...)
// show as test results.
type (
	junitTestsuites struct {
		XMLName  xml.Name         `xml:"testsuites"`
		Name     string           `xml:"name,attr"`
		Tests    int              `xml:"tests,attr"`
		Failures int              `xml:"failures,attr"`
		Errors   int              `xml:"errors,attr"`
		Suites   []junitTestsuite `xml:"testsuite"`
	}
	junitTestsuite struct {
		Name     string          `xml:"name,attr"`
		Tests    int             `xml:"tests,attr"`
		Failures int             `xml:"failures,attr"`
		Errors   int             `xml:"errors,attr"`
		Skipped  int             `xml:"skipped,attr"`
		Cases    []junitTestcase `xml:"testcase"`
	}
	junitTestcase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		File      string        `xml:"file,attr,omitempty"`
		Line      int           `xml:"line,attr,omitempty"`
		Failure   *junitFailure `xml:"failure"`
		SystemOut string        `xml:"system-out,omitempty"`
	}
	junitFailure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
)

// WriteJUnit writes decisions as JUnit XML: a test suite per input file (in
// input order), a test case per Sidecar. A denied Sidecar's case fails with
// the denial as the message and each reason on its own line; warnings go to
// the case's system-out, one per line.
func WriteJUnit(w io.Writer, decisions []Decision) error {
	out := junitTestsuites{Name: ToolName + " check", Suites: []junitTestsuite{}}
	suiteOf := map[string]int{}
	for _, d := range decisions {
		i, ok := suiteOf[d.File]
		if !ok {
			i = len(out.Suites)
			suiteOf[d.File] = i
			out.Suites = append(out.Suites, junitTestsuite{Name: d.File})
		}
		c := junitTestcase{Name: fmt.Sprintf("%s %s/%s", d.Kind, d.Namespace, d.Name), Classname: d.File}
		if d.File != ClusterFile && d.Line > 0 {
			c.Name += fmt.Sprintf(" (line %d)", d.Line)
			c.File, c.Line = d.File, d.Line
		}
		if !d.Allowed {
			c.Failure = &junitFailure{Message: d.Message, Type: "denied", Text: strings.Join(d.Errors, "\n")}
			out.Suites[i].Failures++
			out.Failures++
		}
		if len(d.Warnings) > 0 {
			c.SystemOut = "warning: " + strings.Join(d.Warnings, "\nwarning: ")
		}
		out.Suites[i].Cases = append(out.Suites[i].Cases, c)
		out.Suites[i].Tests++
		out.Tests++
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
