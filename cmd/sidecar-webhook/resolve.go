package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// resolveConfig is the resolve command's configuration.
type resolveConfig struct {
	namespace        string
	namespaceLabels  map[string]string
	labels           map[string]string
	annotations      map[string]string
	hostNetwork      bool
	rootNamespace    string
	istioNamespace   string
	istioRevision    string
	clusterDomain    string
	interceptionMode string
	ipFamily         mesh.IPFamily
	output           string
	paths            []string
}

func parseResolveFlags(args []string, stderr io.Writer) (resolveConfig, error) {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: sidecar-webhook resolve --namespace N [flags] PATH... (files, directories, or - for stdin)")
		fmt.Fprintln(stderr, "Shows whether a pod with the given labels runs an Istio proxy, which Sidecar in PATH it receives, and its listeners as istiod builds them.")
		fmt.Fprintln(stderr, "Namespaces, Istio's injector MutatingWebhookConfigurations and its mesh config ConfigMap in PATH are read too.")
		fs.PrintDefaults()
	}
	var cfg resolveConfig
	var labelsFlag, annotationsFlag, namespaceLabelsFlag, ipFamily string
	fs.StringVar(&cfg.namespace, "namespace", "", "the pod's namespace (required); also the namespace of Sidecars in PATH that name none")
	fs.StringVar(&labelsFlag, "labels", "", "the pod's labels: k=v,k2=v2")
	fs.StringVar(&namespaceLabelsFlag, "namespace-labels", "", "the labels of the pod's namespace, k=v,...; they decide injection (default: the Namespace in PATH; without either, the namespace is assumed labelled istio-injection=enabled)")
	fs.StringVar(&annotationsFlag, "annotations", "", "the pod's annotations: k=v,k2=v2 ("+mesh.AnnotationInterceptionMode+" overrides the interception mode)")
	fs.BoolVar(&cfg.hostNetwork, "host-network", false, "the pod sets spec.hostNetwork (never injected)")
	fs.StringVar(&cfg.rootNamespace, "root-namespace", "", "mesh root namespace (default: the mesh config's in PATH, else istio-system)")
	fs.StringVar(&cfg.istioNamespace, "istio-namespace", mesh.DefaultIstioNamespace, "istiod's namespace, where PATH's mesh config ConfigMap is looked for")
	fs.StringVar(&cfg.istioRevision, "istio-revision", "", "control-plane revision whose mesh config (ConfigMap istio-REVISION) is read")
	fs.StringVar(&cfg.clusterDomain, "cluster-domain", mesh.DefaultClusterDomain, "the cluster's DNS domain, which Service host names end in")
	fs.StringVar(&cfg.interceptionMode, "interception-mode", "", "the proxy's interception mode: REDIRECT, TPROXY or NONE (default: the pod annotation, else the mesh config's defaultConfig.interceptionMode, else REDIRECT)")
	fs.StringVar(&ipFamily, "ip-family", string(mesh.IPv4), "the pod's IP family: ipv4, ipv6 or dual")
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
	if cfg.ipFamily, err = mesh.ParseIPFamily(ipFamily); err != nil {
		return fail("--ip-family: %v", err)
	}
	if cfg.labels, err = parsePairs(labelsFlag, true); err != nil {
		return fail("--labels: %v", err)
	}
	if cfg.annotations, err = parsePairs(annotationsFlag, false); err != nil {
		return fail("--annotations: %v", err)
	}
	if namespaceLabelsFlag != "" {
		if cfg.namespaceLabels, err = parsePairs(namespaceLabelsFlag, true); err != nil {
			return fail("--namespace-labels: %v", err)
		}
	}
	if cfg.interceptionMode != "" && !mesh.ValidInterceptionMode(cfg.interceptionMode) {
		return fail("--interception-mode must be REDIRECT, TPROXY or NONE, got %q", cfg.interceptionMode)
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
	// Proxy is sidecar, gateway or "" (none), and why.
	Proxy            mesh.ProxyKind               `json:"proxy"`
	ProxyReason      string                       `json:"proxyReason"`
	Sidecar          string                       `json:"sidecar"`
	Scope            resolve.Scope                `json:"scope,omitempty"`
	Conflicts        []string                     `json:"conflicts"`
	InterceptionMode string                       `json:"interceptionMode,omitempty"`
	IPFamily         mesh.IPFamily                `json:"ipFamily"`
	Egress           []defaults.EffectiveListener `json:"egress"`
	Ingress          []defaults.EffectiveListener `json:"ingress"`
}

func runResolve(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseResolveFlags(args, stderr)
	if err != nil {
		return flagExit(err)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sidecar-webhook resolve: %v\n", err)
		return exitUsage
	}
	docs, err := offline.Load(cfg.paths, stdin)
	if err != nil {
		return fail(err)
	}
	meshConfig, _, err := offline.MeshConfig(docs, cfg.istioNamespace, cfg.istioRevision)
	if err != nil {
		return fail(err)
	}
	root := cmp.Or(cfg.rootNamespace, meshConfig.RootNamespace, mesh.DefaultRootNamespace)
	view := clusterview.NewMemory(root)
	view.SetClusterDomain(cfg.clusterDomain)
	if err := offline.AddState(view, docs, cfg.namespace); err != nil {
		return fail(err)
	}
	// Injection depends on the namespace's labels: from the flag, else the
	// Namespace in PATH, else assumed on (and said so).
	assumed := ""
	switch {
	case cfg.namespaceLabels != nil:
		view.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cfg.namespace, Labels: cfg.namespaceLabels}})
	case !offline.HasNamespace(docs, cfg.namespace):
		view.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cfg.namespace, Labels: map[string]string{mesh.LabelInjection: "enabled"}}})
		assumed = "; namespace " + cfg.namespace + " is not in PATH: assumed labelled " + mesh.LabelInjection + "=enabled (pass its Namespace or --namespace-labels)"
	}
	sidecars, err := addSidecars(view, docs, cfg.namespace)
	if err != nil {
		return fail(err)
	}

	proxy := clusterview.ProxyOf(view, clusterview.Workload{
		Kind: clusterview.KindPod, Namespace: cfg.namespace, Labels: cfg.labels,
		Annotations: clusterview.KeepAnnotations(cfg.annotations), HostNetwork: cfg.hostNetwork, Manifest: true,
	})
	out := resolveOutput{
		Proxy:       proxy.Kind,
		ProxyReason: proxy.Reason + assumed,
		Conflicts:   []string{},
		IPFamily:    cfg.ipFamily,
		Egress:      []defaults.EffectiveListener{},
		Ingress:     []defaults.EffectiveListener{},
	}
	if res, ok := resolve.ForProxy(view, cfg.namespace, proxy.Kind, cfg.labels); ok {
		out.Sidecar, out.Scope = res.Sidecar, res.Scope
		out.Conflicts = append(out.Conflicts, res.Conflicts...)
		if proxy.Kind == mesh.SidecarProxy {
			out.InterceptionMode = cmp.Or(cfg.interceptionMode, mesh.EffectiveInterceptionMode(cfg.annotations, meshConfig.InterceptionMode))
		}
		if res.Sidecar != "" {
			egress, ingress := defaults.Effective(sidecars[res.Sidecar], defaults.EffectiveOptions{InterceptionMode: out.InterceptionMode, IPFamily: cfg.ipFamily})
			out.Egress = append(out.Egress, egress...)
			out.Ingress = append(out.Ingress, ingress...)
		}
	}
	if cfg.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		err = writeResolution(stdout, out)
	}
	if err != nil {
		return fail(err)
	}
	return exitOK
}

// addSidecars puts the Sidecars among docs into view and returns them decoded
// by namespace/name. A Sidecar without a namespace lives in defaultNamespace;
// a repeated namespace/name replaces the earlier one, as `kubectl apply`
// would.
func addSidecars(view *clusterview.Memory, docs []offline.Document, defaultNamespace string) (map[string]*sidecar.Sidecar, error) {
	byKey := map[string]*sidecar.Sidecar{}
	for _, d := range docs {
		gv, err := schema.ParseGroupVersion(d.APIVersion)
		if err != nil || gv.Group != sidecar.Group || d.Kind != sidecar.Kind {
			continue
		}
		obj, errs := sidecar.Decode(d.JSON)
		if len(errs) > 0 {
			return nil, &offline.ReadError{File: d.File, Line: d.Line, Err: fmt.Errorf("the Sidecar %q is malformed:\n%s", d.Name, offline.FieldErrorsText(errs))}
		}
		if obj.Namespace == "" {
			obj.Namespace = defaultNamespace
		}
		if obj.Name == "" {
			return nil, &offline.ReadError{File: d.File, Line: d.Line, Err: fmt.Errorf("a Sidecar needs metadata.name")}
		}
		ref := clusterview.RefOf(obj)
		view.PutSidecar(ref)
		byKey[ref.Key()] = obj
	}
	return byKey, nil
}

func writeResolution(w io.Writer, out resolveOutput) error {
	var b strings.Builder
	switch out.Proxy {
	case mesh.NoProxy:
		fmt.Fprintf(&b, "Proxy: none (%s): no Sidecar applies\n", out.ProxyReason)
		_, err := io.WriteString(w, b.String())
		return err
	case mesh.GatewayProxy:
		fmt.Fprintf(&b, "Proxy: gateway (%s): istiod gives gateways and waypoints its default scope, never a Sidecar\n", out.ProxyReason)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "Proxy: sidecar (%s)\n", out.ProxyReason)
	if out.Sidecar == "" {
		fmt.Fprintf(&b, "Sidecar: none (scope %s): the proxy gets Istio's defaults\n", out.Scope)
	} else {
		fmt.Fprintf(&b, "Sidecar: %s (scope %s)\n", out.Sidecar, out.Scope)
	}
	if len(out.Conflicts) > 0 {
		fmt.Fprintf(&b, "Conflict: %s compete for this pod; Istio's choice is undefined, in practice it applies %s (the oldest)\n",
			strings.Join(out.Conflicts, ", "), out.Sidecar)
	}
	fmt.Fprintf(&b, "Interception mode: %s; IP family: %s\n", out.InterceptionMode, out.IPFamily)
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
		if l.BindToPort {
			fields = append(fields, "binds "+cmp.Or(strings.Join(l.Binds, " and "), "the pod's IP"))
		} else {
			fields = append(fields, "not bound (iptables)")
		}
		fields = append(fields, "captureMode "+l.CaptureMode)
		if l.DefaultEndpoint != "" {
			fields = append(fields, "defaultEndpoint "+l.DefaultEndpoint)
		}
		if len(l.Hosts) > 0 {
			fields = append(fields, "hosts "+strings.Join(l.Hosts, ","))
		}
		fmt.Fprintf(b, "  - %s\n", strings.Join(fields, ", "))
		if l.Skipped != "" {
			fmt.Fprintf(b, "    skipped: %s\n", l.Skipped)
		}
		if l.Note != "" {
			fmt.Fprintf(b, "    note: %s\n", l.Note)
		}
	}
}
