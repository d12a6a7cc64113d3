package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// checkConfig is the check command's configuration.
type checkConfig struct {
	rootNamespace string
	namespace     string
	output        string
	enforcement   string
	paths         []string
}

func parseCheckFlags(args []string, stderr io.Writer) (checkConfig, error) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: sidecar-webhook check [flags] PATH... (files, directories, or - for stdin)")
		fs.PrintDefaults()
	}
	var cfg checkConfig
	fs.StringVar(&cfg.rootNamespace, "root-namespace", "istio-system", "mesh root namespace")
	fs.StringVar(&cfg.namespace, "namespace", "default", "namespace of objects that name none")
	fs.StringVar(&cfg.output, "o", "text", "output format: text or json")
	fs.StringVar(&cfg.enforcement, "enforcement", string(validation.EnforcementDeny), "deny or warn")
	if err := parseFlags(fs, args, stderr); err != nil {
		return cfg, err
	}
	cfg.paths = fs.Args()
	switch {
	case len(cfg.paths) == 0:
		fmt.Fprintln(stderr, "sidecar-webhook check: at least one PATH is required")
		return cfg, errUsage
	case cfg.output != "text" && cfg.output != "json":
		fmt.Fprintf(stderr, "sidecar-webhook check: -o must be text or json, got %q\n", cfg.output)
		return cfg, errUsage
	case cfg.enforcement != string(validation.EnforcementDeny) && cfg.enforcement != string(validation.EnforcementWarn):
		fmt.Fprintf(stderr, "sidecar-webhook check: --enforcement must be deny or warn, got %q\n", cfg.enforcement)
		return cfg, errUsage
	}
	return cfg, nil
}

func runCheck(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseCheckFlags(args, stderr)
	if err != nil {
		return flagExit(err)
	}
	docs, err := offline.Load(cfg.paths, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook check: %v\n", err)
		return exitUsage
	}
	decisions, err := offline.Check(docs, offline.Options{
		RootNamespace:    cfg.rootNamespace,
		DefaultNamespace: cfg.namespace,
		Validation:       validation.Options{Enforcement: validation.Enforcement(cfg.enforcement)},
	})
	if err != nil {
		// Every error here is a read or parse problem naming file and line.
		fmt.Fprintf(stderr, "sidecar-webhook check: %v\n", err)
		return exitUsage
	}
	if err := writeDecisions(stdout, cfg.output, decisions); err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook check: %v\n", err)
		return exitUsage
	}
	for _, d := range decisions {
		if !d.Allowed {
			return exitDenied
		}
	}
	return exitOK
}

func writeDecisions(w io.Writer, format string, decisions []offline.Decision) error {
	if format == "json" {
		if decisions == nil {
			decisions = []offline.Decision{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(decisions)
	}
	for _, d := range decisions {
		verdict := "ALLOWED"
		if !d.Allowed {
			verdict = "DENIED"
		}
		line := fmt.Sprintf("%s Sidecar %s/%s (%s:%d)", verdict, d.Namespace, d.Name, d.File, d.Line)
		if d.Message != "" {
			line += ": " + d.Message
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
		for _, warning := range d.Warnings {
			if _, err := fmt.Fprintf(w, "    warning: %s\n", warning); err != nil {
				return err
			}
		}
	}
	return nil
}
