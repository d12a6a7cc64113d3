package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// checkConfig is the check command's configuration.
type checkConfig struct {
	rootNamespace  string
	istioNamespace string
	istioRevision  string
	clusterDomain  string
	ipFamily       mesh.IPFamily
	namespace      string
	output         string
	enforcement    string
	cluster        bool
	kubeconfig     string
	paths          []string
}

// checkOutputs are the formats of -o.
var checkOutputs = []string{"text", "json", "sarif", "junit"}

func parseCheckFlags(args []string, stderr io.Writer) (checkConfig, error) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: sidecar-webhook check [flags] PATH... (files, directories, or - for stdin)")
		fs.PrintDefaults()
	}
	var cfg checkConfig
	fs.StringVar(&cfg.rootNamespace, "root-namespace", "", "mesh root namespace (default: the mesh config's, from the cluster with --cluster or from PATH, else istio-system)")
	fs.StringVar(&cfg.istioNamespace, "istio-namespace", mesh.DefaultIstioNamespace, "istiod's namespace, which holds the mesh config")
	fs.StringVar(&cfg.istioRevision, "istio-revision", "", "control-plane revision whose mesh config (ConfigMap istio-REVISION) is read")
	fs.StringVar(&cfg.clusterDomain, "cluster-domain", mesh.DefaultClusterDomain, "the cluster's DNS domain, which Service host names end in")
	var ipFamily string
	fs.StringVar(&ipFamily, "ip-family", string(mesh.IPv4), "the cluster's IP family, which decides the bind defaults: ipv4, ipv6 or dual")
	fs.StringVar(&cfg.namespace, "namespace", "default", "namespace of objects that name none")
	fs.StringVar(&cfg.output, "o", "text", "output format: text, json, sarif (SARIF 2.1.0, for code scanning) or junit (JUnit XML, one test case per Sidecar)")
	fs.StringVar(&cfg.enforcement, "enforcement", string(validation.EnforcementDeny), "deny or warn")
	fs.BoolVar(&cfg.cluster, "cluster", false, "start from the live cluster's state (kubeconfig). Without PATH: the pre-flight, every stored Sidecar that would be denied if created today (in deny mode, whatever --enforcement says), conflicts included. With PATH: the conflicts already in the cluster, then the files, a Sidecar the cluster holds being an update of it")
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig for --cluster (default: $KUBECONFIG, then in-cluster)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return cfg, err
	}
	cfg.paths = fs.Args()
	family, familyErr := mesh.ParseIPFamily(ipFamily)
	cfg.ipFamily = family
	switch {
	case familyErr != nil:
		fmt.Fprintf(stderr, "sidecar-webhook check: --ip-family: %v\n", familyErr)
		return cfg, errUsage
	case len(cfg.paths) == 0 && !cfg.cluster:
		fmt.Fprintln(stderr, "sidecar-webhook check: at least one PATH is required")
		return cfg, errUsage
	case !slices.Contains(checkOutputs, cfg.output):
		fmt.Fprintf(stderr, "sidecar-webhook check: -o must be text, json, sarif or junit, got %q\n", cfg.output)
		return cfg, errUsage
	case cfg.enforcement != string(validation.EnforcementDeny) && cfg.enforcement != string(validation.EnforcementWarn):
		fmt.Fprintf(stderr, "sidecar-webhook check: --enforcement must be deny or warn, got %q\n", cfg.enforcement)
		return cfg, errUsage
	}
	return cfg, nil
}

func runCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseCheckFlags(args, stderr)
	if err != nil {
		return flagExit(err)
	}
	docs, err := offline.Load(cfg.paths, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook check: %v\n", err)
		return exitUsage
	}
	meshConfig, _, err := offline.MeshConfig(docs, cfg.istioNamespace, cfg.istioRevision)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook check: %v\n", err)
		return exitUsage
	}
	opts := offline.Options{
		RootNamespace:    cmp.Or(cfg.rootNamespace, meshConfig.RootNamespace, mesh.DefaultRootNamespace),
		DefaultNamespace: cfg.namespace,
		Validation:       validation.Options{Enforcement: validation.Enforcement(cfg.enforcement)},
		Defaults:         defaults.Options{IPFamily: cfg.ipFamily},
		ClusterDomain:    cfg.clusterDomain,
	}
	var existing []offline.Decision
	if cfg.cluster {
		view, stored, err := liveState(ctx, cfg.kubeconfig, informer.Options{RootNamespace: cfg.rootNamespace, IstioNamespace: cfg.istioNamespace, Revision: cfg.istioRevision, ClusterDomain: cfg.clusterDomain})
		if err != nil {
			fmt.Fprintf(stderr, "sidecar-webhook check: reading the cluster: %v\n", err)
			return exitUsage
		}
		if len(cfg.paths) == 0 {
			// The pre-flight: what deny mode would refuse of what is there.
			return writePreflight(stdout, stderr, cfg.output, offline.Preflight(stored, view))
		}
		opts.View = view
		opts.Stored = stored
		opts.RootNamespace = view.RootNamespace()
		existing = offline.Existing(view)
	}
	decisions, err := offline.Check(docs, opts)
	decisions = append(existing, decisions...)
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
	switch format {
	case "json":
		if decisions == nil {
			decisions = []offline.Decision{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(decisions)
	case "sarif":
		// Paths are written relative to the working directory: the
		// repository root, where CI runs check.
		workDir, err := os.Getwd()
		if err != nil {
			workDir = ""
		}
		return offline.WriteSARIF(w, decisions, workDir)
	case "junit":
		return offline.WriteJUnit(w, decisions)
	}
	for _, d := range decisions {
		verdict := "ALLOWED"
		if !d.Allowed {
			verdict = "DENIED"
		}
		where := d.File
		if d.Line > 0 {
			where = fmt.Sprintf("%s:%d", d.File, d.Line)
		}
		line := fmt.Sprintf("%s Sidecar %s/%s (%s)", verdict, d.Namespace, d.Name, where)
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

// writePreflight prints the pre-flight (`check --cluster` without files):
// in text, the Sidecars that would be denied grouped by namespace, each
// reason on its own line, and a summary; in the other formats, every Sidecar
// checked. The exit code is 1 when any would be denied.
func writePreflight(stdout, stderr io.Writer, format string, decisions []offline.Decision) int {
	denied := 0
	for _, d := range decisions {
		if !d.Allowed {
			denied++
		}
	}
	var err error
	if format == "text" {
		err = writePreflightText(stdout, decisions, denied)
	} else {
		err = writeDecisions(stdout, format, decisions)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook check: %v\n", err)
		return exitUsage
	}
	if denied > 0 {
		return exitDenied
	}
	return exitOK
}

func writePreflightText(w io.Writer, decisions []offline.Decision, denied int) error {
	var b strings.Builder
	namespace := ""
	for _, d := range decisions {
		if d.Allowed {
			continue
		}
		if d.Namespace != namespace {
			namespace = d.Namespace
			fmt.Fprintf(&b, "namespace %s:\n", namespace)
		}
		fmt.Fprintf(&b, "  Sidecar %s would be denied if created today:\n", d.Name)
		for _, e := range d.Errors {
			fmt.Fprintf(&b, "    - %s\n", e)
		}
	}
	sidecars := "Sidecars"
	if len(decisions) == 1 {
		sidecars = "Sidecar"
	}
	if denied == 0 {
		fmt.Fprintf(&b, "%d %s checked, none would be denied\n", len(decisions), sidecars)
	} else {
		fmt.Fprintf(&b, "%d %s checked, %d would be denied\n", len(decisions), sidecars, denied)
		b.WriteString("They keep working under enforcement=deny: an update that leaves these problems as they are is admitted with a warning; a new Sidecar like them, or a change to such a field, is denied.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// liveState reads the cluster named by kubeconfig into an in-memory view,
// and its Sidecars in full: ratcheting compares an update with the stored
// object, and the pre-flight judges each one.
func liveState(ctx context.Context, kubeconfig string, opts informer.Options) (*clusterview.Memory, []*sidecar.Sidecar, error) {
	c, err := liveClient(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	return loadLiveState(ctx, c, opts)
}

// liveClient is a client of the cluster named by kubeconfig (else the usual
// chain: $KUBECONFIG, in-cluster, ~/.kube/config).
func liveClient(kubeconfig string) (client.Client, error) {
	restConfig, err := restConfigFor(kubeconfig)
	if err != nil {
		return nil, err
	}
	scheme, err := informer.NewScheme()
	if err != nil {
		return nil, err
	}
	return client.New(restConfig, client.Options{Scheme: scheme})
}

// loadLiveState is liveState with a client.
func loadLiveState(ctx context.Context, c client.Reader, opts informer.Options) (*clusterview.Memory, []*sidecar.Sidecar, error) {
	view, err := informer.LoadMemory(ctx, c, opts)
	if err != nil {
		return nil, nil, err
	}
	var list networkingv1.SidecarList
	if err := c.List(ctx, &list); err != nil {
		return nil, nil, fmt.Errorf("listing Sidecars: %w", err)
	}
	stored := make([]*sidecar.Sidecar, 0, len(list.Items))
	for _, s := range list.Items {
		// The view listed Sidecars a moment earlier; one created since
		// must be in it too, so that the others are judged against it.
		view.PutSidecar(clusterview.RefOf(s))
		stored = append(stored, s)
	}
	return view, stored, nil
}
