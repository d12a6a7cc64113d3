package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// interceptionModeAnnotation is Istio's per-pod override of the proxy's
// interception mode.
const interceptionModeAnnotation = "sidecar.istio.io/interceptionMode"

// resolveConfig is the resolve command's configuration.
type resolveConfig struct {
	namespace        string
	labels           map[string]string
	annotations      map[string]string
	rootNamespace    string
	interceptionMode string
	output           string
	paths            []string
}

func parseResolveFlags(args []string, stderr io.Writer) (resolveConfig, error) {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: sidecar-webhook resolve --namespace N [flags] PATH... (files, directories, or - for stdin)")
		fmt.Fprintln(stderr, "Shows which Sidecar in PATH a pod with the given labels receives, and its listeners as the proxy runs them.")
		fs.PrintDefaults()
	}
	var cfg resolveConfig
	var labelsFlag, annotationsFlag string
	fs.StringVar(&cfg.namespace, "namespace", "", "the pod's namespace (required); also the namespace of Sidecars in PATH that name none")
	fs.StringVar(&labelsFlag, "labels", "", "the pod's labels: k=v,k2=v2")
	fs.StringVar(&annotationsFlag, "annotations", "", "the pod's annotations: k=v,k2=v2 ("+interceptionModeAnnotation+" overrides --interception-mode)")
	fs.StringVar(&cfg.rootNamespace, "root-namespace", "istio-system", "mesh root namespace")
	fs.StringVar(&cfg.interceptionMode, "interception-mode", defaults.InterceptionRedirect, "the proxy's interception mode: REDIRECT, TPROXY or NONE")
	fs.StringVar(&cfg.output, "o", "text", "output format: text or json")
	if err := parseFlags(fs, args, stderr); err != nil {
		return cfg, err
	}
	cfg.paths = fs.Args()
	fail := func(format string, a ...any) (resolveConfig, error) {
		fmt.Fprintf(stderr, "sidecar-webhook resolve: "+format+"\n", a...)
		return cfg, errUsage
	}
	if cfg.namespace == "" {
		return fail("--namespace is required")
	}
	if errs := validation.IsDNS1123Label(cfg.namespace); len(errs) > 0 {
		return fail("--namespace %q: %s", cfg.namespace, strings.Join(errs, "; "))
	}
	if len(cfg.paths) == 0 {
		return fail("at least one PATH is required")
	}
	if cfg.output != "text" && cfg.output != "json" {
		return fail("-o must be text or json, got %q", cfg.output)
	}
	var err error
	if cfg.labels, err = parsePairs(labelsFlag, true); err != nil {
		return fail("--labels: %v", err)
	}
	if cfg.annotations, err = parsePairs(annotationsFlag, false); err != nil {
		return fail("--annotations: %v", err)
	}
	if v, ok := cfg.annotations[interceptionModeAnnotation]; ok {
		cfg.interceptionMode = v
	}
	switch cfg.interceptionMode {
	case defaults.InterceptionRedirect, defaults.InterceptionTProxy, defaults.InterceptionNone:
	default:
		return fail("the interception mode must be REDIRECT, TPROXY or NONE, got %q", cfg.interceptionMode)
	}
	return cfg, nil
}

// parsePairs reads "k=v,k2=v2" strictly: every item needs a key and an "=",
// keys are qualified names, a key appears once; for labels the values must be
// valid label values. An empty string is no pairs.
func parsePairs(s string, labelValues bool) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", item)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("key %q: %s", k, strings.Join(errs, "; "))
		}
		if labelValues {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return nil, fmt.Errorf("value %q of %q: %s", v, k, strings.Join(errs, "; "))
			}
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("key %q given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// resolveOutput is the `-o json` form.
type resolveOutput struct {
	Sidecar   string                       `json:"sidecar"`
	Scope     resolve.Scope                `json:"scope"`
	Conflicts []string                     `json:"conflicts"`
	Egress    []defaults.EffectiveListener `json:"egress"`
	Ingress   []defaults.EffectiveListener `json:"ingress"`
}

func runResolve(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseResolveFlags(args, stderr)
	if err != nil {
		return flagExit(err)
	}
	docs, err := offline.Load(cfg.paths, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook resolve: %v\n", err)
		return exitUsage
	}
	view, sidecars, err := sidecarView(docs, cfg.rootNamespace, cfg.namespace)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook resolve: %v\n", err)
		return exitUsage
	}

	res := resolve.Resolve(view, cfg.namespace, cfg.labels)
	out := resolveOutput{
		Sidecar:   res.Sidecar,
		Scope:     res.Scope,
		Conflicts: append([]string{}, res.Conflicts...),
		Egress:    []defaults.EffectiveListener{},
		Ingress:   []defaults.EffectiveListener{},
	}
	if res.Sidecar != "" {
		egress, ingress := defaults.Effective(sidecars[res.Sidecar], cfg.interceptionMode)
		out.Egress = append(out.Egress, egress...)
		out.Ingress = append(out.Ingress, ingress...)
	}
	if cfg.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		err = writeResolution(stdout, out, cfg.interceptionMode)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook resolve: %v\n", err)
		return exitUsage
	}
	return exitOK
}

// sidecarView builds a view holding the Sidecars among docs (other kinds do
// not change which Sidecar a pod gets) and returns the decoded Sidecars by
// namespace/name. A Sidecar without a namespace lives in defaultNamespace; a
// repeated namespace/name replaces the earlier one, as `kubectl apply` would.
func sidecarView(docs []offline.Document, rootNamespace, defaultNamespace string) (*clusterview.Memory, map[string]*sidecar.Sidecar, error) {
	view := clusterview.NewMemory(rootNamespace)
	byKey := map[string]*sidecar.Sidecar{}
	for _, d := range docs {
		gv, err := schema.ParseGroupVersion(d.APIVersion)
		if err != nil || gv.Group != sidecar.Group || d.Kind != sidecar.Kind {
			continue
		}
		obj, errs := sidecar.Decode(d.JSON)
		if len(errs) > 0 {
			return nil, nil, &offline.ReadError{File: d.File, Line: d.Line, Err: fmt.Errorf("the Sidecar %q is malformed:\n%s", d.Name, offline.FieldErrorsText(errs))}
		}
		if obj.Namespace == "" {
			obj.Namespace = defaultNamespace
		}
		if obj.Name == "" {
			return nil, nil, &offline.ReadError{File: d.File, Line: d.Line, Err: fmt.Errorf("a Sidecar needs metadata.name")}
		}
		ref := clusterview.RefOf(obj)
		view.PutSidecar(ref)
		byKey[ref.Key()] = obj
	}
	return view, byKey, nil
}

func writeResolution(w io.Writer, out resolveOutput, interceptionMode string) error {
	var b strings.Builder
	if out.Sidecar == "" {
		fmt.Fprintf(&b, "Sidecar: none (scope %s): the proxy gets Istio's defaults\n", out.Scope)
	} else {
		fmt.Fprintf(&b, "Sidecar: %s (scope %s)\n", out.Sidecar, out.Scope)
	}
	if len(out.Conflicts) > 0 {
		fmt.Fprintf(&b, "Conflict: %s compete for this pod; Istio's choice is undefined, in practice it applies %s (the oldest)\n",
			strings.Join(out.Conflicts, ", "), out.Sidecar)
	}
	fmt.Fprintf(&b, "Interception mode: %s\n", interceptionMode)
	if out.Sidecar != "" {
		writeListeners(&b, "Egress", out.Egress)
		writeListeners(&b, "Ingress", out.Ingress)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeListeners(b *strings.Builder, title string, listeners []defaults.EffectiveListener) {
	if len(listeners) == 0 {
		fmt.Fprintf(b, "%s listeners: none in the Sidecar (Istio's defaults)\n", title)
		return
	}
	fmt.Fprintf(b, "%s listeners:\n", title)
	for _, l := range listeners {
		port := "(from hosts)"
		if l.Port != 0 || l.Protocol != "" {
			port = fmt.Sprintf("%d", l.Port)
		}
		fields := []string{"port " + port}
		if l.Protocol != "" {
			fields = append(fields, "protocol "+l.Protocol)
		}
		if l.Name != "" {
			fields = append(fields, "name "+l.Name)
		}
		if l.Bind != "" {
			fields = append(fields, "bind "+l.Bind)
		}
		fields = append(fields, "capture "+l.CaptureMode)
		if l.DefaultEndpoint != "" {
			fields = append(fields, "defaultEndpoint "+l.DefaultEndpoint)
		}
		if len(l.Hosts) > 0 {
			fields = append(fields, "hosts "+strings.Join(l.Hosts, ","))
		}
		fmt.Fprintf(b, "  - %s\n", strings.Join(fields, ", "))
		if l.Note != "" {
			fmt.Fprintf(b, "    note: %s\n", l.Note)
		}
	}
}
