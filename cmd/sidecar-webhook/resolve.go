package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
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
	// ipFamilySet: --ip-family was given, so it wins over a running pod's
	// own addresses.
	ipFamilySet bool
	output      string
	// cluster reads the live cluster (kubeconfig) instead of files: the
	// running pod named pod, or (pod "") a pod with labels about to be
	// created.
	cluster    bool
	kubeconfig string
	pod        string
	paths      []string
}

func parseResolveFlags(args []string, stderr io.Writer) (resolveConfig, error) {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: sidecar-webhook resolve --namespace N [flags] PATH...   (files, directories, or - for stdin)")
		fmt.Fprintln(stderr, "       sidecar-webhook resolve -n N [--kubeconfig F] POD       (a running pod, from the live cluster)")
		fmt.Fprintln(stderr, "       sidecar-webhook resolve --cluster -n N --labels k=v,...  (a pod about to be created, in the live cluster)")
		fmt.Fprintln(stderr, "Shows whether the pod runs an Istio proxy, which Sidecar it receives, and its listeners as istiod builds them.")
		fmt.Fprintln(stderr, "From files, Namespaces, Istio's injector MutatingWebhookConfigurations and its mesh config ConfigMap in PATH are read too;")
		fmt.Fprintln(stderr, "from the cluster, all of them, and for a running pod whether its "+clusterview.OwnAnnotationPrefix+" annotations agree.")
		fmt.Fprintln(stderr, "A single argument that is no file or directory (and does not end in .yaml, .yml or .json) names a POD.")
		fs.PrintDefaults()
	}
	var cfg resolveConfig
	var labelsFlag, annotationsFlag, namespaceLabelsFlag, ipFamily string
	fs.StringVar(&cfg.namespace, "namespace", "", "the pod's namespace (required); also the namespace of Sidecars in PATH that name none")
	fs.StringVar(&cfg.namespace, "n", "", "short for --namespace")
	fs.BoolVar(&cfg.cluster, "cluster", false, "read the live cluster (kubeconfig) instead of PATH: with POD, that running pod; with --labels, a pod about to be created")
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster for POD or --cluster (default: $KUBECONFIG, then in-cluster, then ~/.kube/config)")
	fs.StringVar(&labelsFlag, "labels", "", "the pod's labels: k=v,k2=v2")
	fs.StringVar(&namespaceLabelsFlag, "namespace-labels", "", "the labels of the pod's namespace, k=v,...; they decide injection (default: the Namespace in PATH; without either, the namespace is assumed labelled istio-injection=enabled)")
	fs.StringVar(&annotationsFlag, "annotations", "", "the pod's annotations: k=v,k2=v2 ("+mesh.AnnotationInterceptionMode+" overrides the interception mode)")
	fs.BoolVar(&cfg.hostNetwork, "host-network", false, "the pod sets spec.hostNetwork (never injected)")
	fs.StringVar(&cfg.rootNamespace, "root-namespace", "", "mesh root namespace (default: the mesh config's in PATH, else istio-system)")
	fs.StringVar(&cfg.istioNamespace, "istio-namespace", mesh.DefaultIstioNamespace, "istiod's namespace, where PATH's mesh config ConfigMap is looked for")
	fs.StringVar(&cfg.istioRevision, "istio-revision", "", "control-plane revision whose mesh config (ConfigMap istio-REVISION) is read")
	fs.StringVar(&cfg.clusterDomain, "cluster-domain", mesh.DefaultClusterDomain, "the cluster's DNS domain, which Service host names end in")
	fs.StringVar(&cfg.interceptionMode, "interception-mode", "", "the proxy's interception mode: REDIRECT, TPROXY or NONE (default: the pod annotation, else the mesh config's defaultConfig.interceptionMode, else REDIRECT)")
	fs.StringVar(&ipFamily, "ip-family", string(mesh.IPv4), "the pod's IP family: ipv4, ipv6 or dual (a running pod's default: that of its addresses)")
	fs.StringVar(&cfg.output, "o", "text", "output format: text or json")
	// Flags may follow the arguments, as with kubectl: `resolve -n prod
	// POD -o json`.
	var rest []string
	for remaining := args; ; {
		if err := parseFlags(fs, remaining, stderr); err != nil {
			return cfg, err
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		remaining = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.ipFamilySet = set["ip-family"]
	fail := func(format string, a ...any) (resolveConfig, error) {
		fmt.Fprintf(stderr, "sidecar-webhook resolve: "+format+"\n", a...)
		return cfg, errUsage
	}
	if !cfg.cluster && len(rest) == 1 && namesPod(rest[0]) {
		cfg.cluster = true
	}
	if cfg.cluster {
		switch len(rest) {
		case 0:
		case 1:
			cfg.pod = rest[0]
			if cfg.pod == "-" || manifestName(cfg.pod) {
				return fail("--cluster reads no files, so %q must name a pod", cfg.pod)
			}
			if errs := validation.IsDNS1123Subdomain(cfg.pod); len(errs) > 0 {
				return fail("POD %q: %s", cfg.pod, strings.Join(errs, "; "))
			}
		default:
			return fail("from the cluster, give one POD, or none and --labels; got %d arguments", len(rest))
		}
	} else {
		cfg.paths = rest
	}
	if cfg.namespace == "" {
		return fail("--namespace is required")
	}
	if errs := validation.IsDNS1123Label(cfg.namespace); len(errs) > 0 {
		return fail("--namespace %q: %s", cfg.namespace, strings.Join(errs, "; "))
	}
	switch {
	case !cfg.cluster && len(cfg.paths) == 0:
		return fail("at least one PATH is required (or a POD, or --cluster)")
	case cfg.cluster && set["namespace-labels"]:
		return fail("--namespace-labels: the namespace's labels come from the cluster")
	case cfg.pod != "":
		for _, name := range []string{"labels", "annotations", "host-network"} {
			if set[name] {
				return fail("--%s: the labels, annotations and hostNetwork of pod %s come from the cluster", name, cfg.pod)
			}
		}
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

// namesPod reports whether the one argument of resolve names a pod rather
// than a manifest: no file or directory has that name, it does not end like
// a manifest, and it is a valid pod name.
func namesPod(arg string) bool {
	if arg == "-" || manifestName(arg) || len(validation.IsDNS1123Subdomain(arg)) > 0 {
		return false
	}
	_, err := os.Stat(arg)
	return errors.Is(err, os.ErrNotExist)
}

func manifestName(arg string) bool {
	for _, ext := range []string{".yaml", ".yml", ".json"} {
		if strings.HasSuffix(strings.ToLower(arg), ext) {
			return true
		}
	}
	return false
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
	// Pod is the namespace/name of the running pod read from the cluster;
	// absent otherwise.
	Pod string `json:"pod,omitempty"`
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
	// Annotations compares a running pod's annotations with this
	// resolution; absent unless Pod is set.
	Annotations *annotationCheck `json:"annotations,omitempty"`
}

// annotationCheck compares the sidecar-webhook.io annotations a running pod
// carries (written by the pod webhook at creation, kept by the annotation
// reconciler) with those resolve.AnnotationsFor writes for the resolution
// now.
type annotationCheck struct {
	Agree bool `json:"agree"`
	// Pod and Now hold the annotations of resolve.AnnotationsFor's keys: on
	// the pod, and as they would be written now.
	Pod map[string]string `json:"pod"`
	Now map[string]string `json:"now"`
}

// resolveInput is what a resolution reads, from files or from the cluster.
type resolveInput struct {
	view clusterview.View
	// sidecars holds the Sidecars of view in full, by namespace/name.
	sidecars map[string]*sidecar.Sidecar
	mesh     mesh.Config
	workload clusterview.Workload
	// annotations are the pod's, all of them (the workload keeps only
	// some).
	annotations map[string]string
	ipFamily    mesh.IPFamily
	// note ends the proxy's reason.
	note string
	// pod is the namespace/name of a running pod read from the cluster.
	pod string
}

func runResolve(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseResolveFlags(args, stderr)
	if err != nil {
		return flagExit(err)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sidecar-webhook resolve: %v\n", err)
		return exitUsage
	}
	var in resolveInput
	if cfg.cluster {
		c, err := liveClient(cfg.kubeconfig)
		if err != nil {
			return fail(fmt.Errorf("reading the cluster: %w", err))
		}
		in, err = clusterInput(ctx, c, cfg)
		if err != nil {
			return fail(err)
		}
	} else if in, err = fileInput(cfg, stdin); err != nil {
		return fail(err)
	}
	out := resolveFor(in, cfg)
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

// fileInput builds the cluster state from the manifests in cfg.paths; the
// pod is the one the flags describe, judged as a manifest (not created
// yet).
func fileInput(cfg resolveConfig, stdin io.Reader) (resolveInput, error) {
	docs, err := offline.Load(cfg.paths, stdin)
	if err != nil {
		return resolveInput{}, err
	}
	meshConfig, _, err := offline.MeshConfig(docs, cfg.istioNamespace, cfg.istioRevision)
	if err != nil {
		return resolveInput{}, err
	}
	root := cmp.Or(cfg.rootNamespace, meshConfig.RootNamespace, mesh.DefaultRootNamespace)
	view := clusterview.NewMemory(root)
	view.SetClusterDomain(cfg.clusterDomain)
	if err := offline.AddState(view, docs, cfg.namespace); err != nil {
		return resolveInput{}, err
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
		return resolveInput{}, err
	}
	return resolveInput{
		view: view, sidecars: sidecars, mesh: meshConfig, annotations: cfg.annotations, ipFamily: cfg.ipFamily, note: assumed,
		workload: clusterview.Workload{
			Kind: clusterview.KindPod, Namespace: cfg.namespace, Labels: cfg.labels,
			Annotations: clusterview.KeepAnnotations(cfg.annotations), HostNetwork: cfg.hostNetwork, Manifest: true,
		},
	}, nil
}

// clusterInput reads the live cluster: its state, Sidecars and mesh config,
// and the running pod cfg.pod with its own labels, annotations,
// spec.hostNetwork and addresses, judged as the running pod it is. Without
// a pod name, the pod is the one the flags describe, about to be created.
func clusterInput(ctx context.Context, reader client.Reader, cfg resolveConfig) (resolveInput, error) {
	opts := informer.Options{RootNamespace: cfg.rootNamespace, IstioNamespace: cfg.istioNamespace, Revision: cfg.istioRevision}
	meshConfig, err := informer.LoadMeshConfig(ctx, reader, opts)
	if err != nil {
		return resolveInput{}, err
	}
	view, stored, err := loadLiveState(ctx, reader, opts)
	if err != nil {
		return resolveInput{}, fmt.Errorf("reading the cluster: %w", err)
	}
	if !view.NamespaceExists(cfg.namespace) {
		return resolveInput{}, fmt.Errorf("namespace %q does not exist in the cluster", cfg.namespace)
	}
	in := resolveInput{view: view, sidecars: map[string]*sidecar.Sidecar{}, mesh: meshConfig, ipFamily: cfg.ipFamily}
	for _, s := range stored {
		in.sidecars[s.Namespace+"/"+s.Name] = s
	}
	if cfg.pod == "" {
		in.annotations = cfg.annotations
		in.workload = clusterview.Workload{
			Kind: clusterview.KindPod, Namespace: cfg.namespace, Labels: cfg.labels,
			Annotations: clusterview.KeepAnnotations(cfg.annotations), HostNetwork: cfg.hostNetwork, Manifest: true,
		}
		return in, nil
	}
	pod := &corev1.Pod{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: cfg.namespace, Name: cfg.pod}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return resolveInput{}, fmt.Errorf("pod %s/%s not found (nor a file or directory named %q)", cfg.namespace, cfg.pod, cfg.pod)
		}
		return resolveInput{}, fmt.Errorf("reading pod %s/%s: %w", cfg.namespace, cfg.pod, err)
	}
	in.pod = pod.Namespace + "/" + pod.Name
	in.annotations = pod.Annotations
	in.workload = clusterview.Workload{
		Kind: clusterview.KindPod, Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels,
		Annotations: clusterview.KeepAnnotations(pod.Annotations), HostNetwork: pod.Spec.HostNetwork,
	}
	if !cfg.ipFamilySet {
		ips := make([]string, 0, len(pod.Status.PodIPs))
		for _, ip := range pod.Status.PodIPs {
			ips = append(ips, ip.IP)
		}
		if family, ok := mesh.IPFamilyOf(ips); ok {
			in.ipFamily = family
		}
	}
	return in, nil
}

// resolveFor decides the proxy, the Sidecar it receives and its listeners;
// for a running pod, it compares the pod's annotations with the result.
func resolveFor(in resolveInput, cfg resolveConfig) resolveOutput {
	proxy := clusterview.ProxyOf(in.view, in.workload)
	out := resolveOutput{
		Pod:         in.pod,
		Proxy:       proxy.Kind,
		ProxyReason: proxy.Reason + in.note,
		Conflicts:   []string{},
		IPFamily:    in.ipFamily,
		Egress:      []defaults.EffectiveListener{},
		Ingress:     []defaults.EffectiveListener{},
	}
	var resolution *resolve.Resolution
	if res, ok := resolve.ForProxy(in.view, in.workload.Namespace, proxy.Kind, in.workload.Labels); ok {
		resolution = &res
		out.Sidecar, out.Scope = res.Sidecar, res.Scope
		out.Conflicts = append(out.Conflicts, res.Conflicts...)
		if proxy.Kind == mesh.SidecarProxy {
			out.InterceptionMode = cmp.Or(cfg.interceptionMode, mesh.EffectiveInterceptionMode(in.annotations, in.mesh.InterceptionMode))
		}
		if res.Sidecar != "" {
			egress, ingress := defaults.Effective(in.sidecars[res.Sidecar], defaults.EffectiveOptions{InterceptionMode: out.InterceptionMode, IPFamily: in.ipFamily})
			out.Egress = append(out.Egress, egress...)
			out.Ingress = append(out.Ingress, ingress...)
		}
	}
	if in.pod != "" {
		now, changed := resolve.AnnotationsFor(in.annotations, resolution)
		out.Annotations = &annotationCheck{Agree: !changed, Pod: ownAnnotations(in.annotations), Now: ownAnnotations(now)}
	}
	return out
}

// ownedPodAnnotations are the keys resolve.AnnotationsFor manages.
var ownedPodAnnotations = []string{resolve.AnnotationSidecar, resolve.AnnotationSidecarScope, resolve.AnnotationSidecarConflict}

func ownAnnotations(all map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range ownedPodAnnotations {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	return out
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
	if out.Pod != "" {
		fmt.Fprintf(&b, "Pod: %s (read from the cluster)\n", out.Pod)
	}
	switch out.Proxy {
	case mesh.NoProxy:
		fmt.Fprintf(&b, "Proxy: none (%s): no Sidecar applies\n", out.ProxyReason)
	case mesh.GatewayProxy:
		fmt.Fprintf(&b, "Proxy: gateway (%s): istiod gives gateways and waypoints its default scope, never a Sidecar\n", out.ProxyReason)
	default:
		writeSidecarResolution(&b, out)
	}
	if out.Annotations != nil {
		writeAnnotationCheck(&b, *out.Annotations)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSidecarResolution(b *strings.Builder, out resolveOutput) {
	fmt.Fprintf(b, "Proxy: sidecar (%s)\n", out.ProxyReason)
	if out.Sidecar == "" {
		fmt.Fprintf(b, "Sidecar: none (scope %s): the proxy gets Istio's defaults\n", out.Scope)
	} else {
		fmt.Fprintf(b, "Sidecar: %s (scope %s)\n", out.Sidecar, out.Scope)
	}
	if len(out.Conflicts) > 0 {
		fmt.Fprintf(b, "Conflict: %s compete for this pod; Istio's choice is undefined, in practice it applies %s (the oldest)\n",
			strings.Join(out.Conflicts, ", "), out.Sidecar)
	}
	fmt.Fprintf(b, "Interception mode: %s; IP family: %s\n", out.InterceptionMode, out.IPFamily)
	if out.Sidecar != "" {
		writeListeners(b, "Egress", out.Egress)
		writeListeners(b, "Ingress", out.Ingress)
	}
}

// writeAnnotationCheck says whether a running pod's annotations agree with
// the resolution, and which differ.
func writeAnnotationCheck(b *strings.Builder, check annotationCheck) {
	if check.Agree {
		fmt.Fprintf(b, "Annotations: the pod's %s annotations agree with this resolution\n", clusterview.OwnAnnotationPrefix)
		return
	}
	fmt.Fprintf(b, "Annotations: the pod's %s annotations disagree with this resolution:\n", clusterview.OwnAnnotationPrefix)
	for _, k := range ownedPodAnnotations {
		onPod, hasPod := check.Pod[k]
		now, hasNow := check.Now[k]
		if hasPod == hasNow && onPod == now {
			continue
		}
		fmt.Fprintf(b, "  %s: %s on the pod, %s now\n", k, annotationValue(onPod, hasPod), annotationValue(now, hasNow))
	}
	b.WriteString("  (the pod webhook wrote them at creation; the annotation reconciler, --reconcile-pods, rewrites them when Sidecars or labels change)\n")
}

func annotationValue(v string, ok bool) string {
	if !ok {
		return "absent"
	}
	return strconv.Quote(v)
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
