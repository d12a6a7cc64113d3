package oracle

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	networking "istio.io/api/networking/v1alpha3"
	"istio.io/istio/pilot/pkg/model"
	istiocore "istio.io/istio/pilot/pkg/networking/core"
	"istio.io/istio/pilot/pkg/serviceregistry/provider"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/host"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/protocol"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/config/schema/kind"
	"istio.io/istio/pkg/kube/krt"
)

// SidecarObject is one Sidecar resource in the cluster.
type SidecarObject struct {
	Namespace string
	Name      string
	Created   time.Time
	Spec      *networking.Sidecar
}

// ServiceEntryObject is one ServiceEntry resource in the cluster.
type ServiceEntryObject struct {
	Namespace string
	Name      string
	Created   time.Time
	Spec      *networking.ServiceEntry
}

// ServicePort is one port of a Kubernetes Service.
type ServicePort struct {
	Name     string
	Port     int
	Protocol string // Istio protocol name: HTTP, TCP, GRPC, ...; "" is auto-detect
}

// Service is a Kubernetes Service as istiod's registry sees it.
type Service struct {
	Namespace string
	Name      string
	// ClusterIP; "" or "None" makes a headless service.
	ClusterIP string
	Ports     []ServicePort
}

// State is the part of a cluster istiod builds a push context from.
type State struct {
	// RootNamespace is the mesh config's rootNamespace; "" means istio-system.
	RootNamespace  string
	Sidecars       []SidecarObject
	Services       []Service
	ServiceEntries []ServiceEntryObject
	// ProxyListenPort and ProxyInboundListenPort are the mesh config's
	// ports of the virtual outbound and inbound listeners; 0 keeps the
	// defaults (15001, 15006). istiod skips Sidecar listeners that would
	// take them (conflictWithReservedListener).
	ProxyListenPort        int32
	ProxyInboundListenPort int32
}

// failer implements istio's test.Failer outside a test: Fatal records the
// error and ends the goroutine (the oracle runs Istio's fakes in their own
// goroutine), Cleanup functions run on close.
type failer struct {
	mu       sync.Mutex
	err      error
	cleanups []func()
	tmp      []string
}

func (f *failer) Fail()                     { f.Fatal("fail called") }
func (f *failer) FailNow()                  { f.Fatal("fail now called") }
func (f *failer) Fatalf(s string, a ...any) { f.Fatal(fmt.Sprintf(s, a...)) }
func (f *failer) Log(...any)                {}
func (f *failer) Logf(string, ...any)       {}
func (f *failer) Helper()                   {}
func (f *failer) Skip(a ...any)             { f.Fatal(a...) }
func (f *failer) Fatal(a ...any) {
	f.mu.Lock()
	if f.err == nil {
		f.err = fmt.Errorf("%s", fmt.Sprint(a...))
	}
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *failer) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *failer) TempDir() string {
	d, err := os.MkdirTemp("", "istiodiff")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func (f *failer) close() {
	f.mu.Lock()
	c := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// run runs fn in its own goroutine so that Fatal can end it.
func (f *failer) run(fn func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Istiod is istiod's real configuration generator over one State: Istio's
// pilot/pkg/networking/core ConfigGenTest (fake.go: an in-memory config
// store holding the Sidecars and ServiceEntries, the ServiceEntry and
// in-memory service registries, a mesh watcher, and the PushContext istiod
// initialises from them). Close releases it.
type Istiod struct {
	state  State
	f      *failer
	cg     *istiocore.ConfigGenTest
	closed bool
}

// NewIstiod builds istiod's PushContext for state.
func NewIstiod(state State) (*Istiod, error) {
	root := state.RootNamespace
	if root == "" {
		root = "istio-system"
	}
	state.RootNamespace = root
	m := mesh.DefaultMeshConfig()
	m.RootNamespace = root
	if state.ProxyListenPort != 0 {
		m.ProxyListenPort = state.ProxyListenPort
	}
	if state.ProxyInboundListenPort != 0 {
		m.ProxyInboundListenPort = state.ProxyInboundListenPort
	}

	var configs []config.Config
	for _, s := range state.Sidecars {
		configs = append(configs, config.Config{
			Meta: config.Meta{
				GroupVersionKind:  gvk.Sidecar,
				Name:              s.Name,
				Namespace:         s.Namespace,
				CreationTimestamp: s.Created,
			},
			Spec: s.Spec,
		})
	}
	for _, s := range state.ServiceEntries {
		configs = append(configs, config.Config{
			Meta: config.Meta{
				GroupVersionKind:  gvk.ServiceEntry,
				Name:              s.Name,
				Namespace:         s.Namespace,
				CreationTimestamp: s.Created,
			},
			Spec: s.Spec,
		})
	}
	var services []*model.Service
	for _, s := range state.Services {
		services = append(services, kubeService(s))
	}

	o := &Istiod{state: state, f: &failer{}}
	live.Lock()
	live.n++
	live.Unlock()
	err := o.f.run(func() {
		o.cg = istiocore.NewConfigGenTest(o.f, istiocore.TestOptions{
			Configs:    configs,
			Services:   services,
			MeshConfig: m,
		})
	})
	if err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// live counts the Istiod instances not yet closed. Istio's fakes register
// every krt collection they create with krt.GlobalDebugHandler, which keeps
// them (and with them the whole fake istiod, ~0.7 MB) forever; when the last
// instance closes, the oracle empties that debug registry so that thousands
// of states can be built in one process.
var live struct {
	sync.Mutex
	n int
}

// kubeService turns a Service into istiod's model of a Kubernetes service.
func kubeService(s Service) *model.Service {
	hostname := host.Name(fmt.Sprintf("%s.%s.svc.cluster.local", s.Name, s.Namespace))
	svc := &model.Service{
		Hostname:       hostname,
		DefaultAddress: s.ClusterIP,
		Resolution:     model.ClientSideLB,
		Attributes: model.ServiceAttributes{
			ServiceRegistry: provider.Kubernetes,
			Name:            s.Name,
			Namespace:       s.Namespace,
		},
	}
	if s.ClusterIP == "" || s.ClusterIP == "None" {
		svc.DefaultAddress = "0.0.0.0"
		svc.Resolution = model.Passthrough
	} else {
		svc.ClusterVIPs = model.AddressMap{Addresses: map[cluster.ID][]string{"Kubernetes": {s.ClusterIP}}}
	}
	for _, p := range s.Ports {
		svc.Ports = append(svc.Ports, &model.Port{Name: p.Name, Port: p.Port, Protocol: protocol.Parse(p.Protocol)})
	}
	return svc
}

// Close stops istiod's fake controllers.
func (o *Istiod) Close() {
	if o == nil || o.closed {
		return
	}
	o.closed = true
	o.f.close()
	live.Lock()
	defer live.Unlock()
	live.n--
	if live.n == 0 {
		*krt.GlobalDebugHandler = krt.DebugHandler{}
	}
}

// ProxyType is istiod's node type of a proxy.
type ProxyType string

const (
	SidecarProxy ProxyType = ProxyType(model.SidecarProxy)
	Router       ProxyType = ProxyType(model.Router)
	Waypoint     ProxyType = ProxyType(model.Waypoint)
)

// Proxy is a proxy connecting to istiod.
type Proxy struct {
	// Type; "" means sidecar.
	Type ProxyType
	// Namespace is the proxy's config namespace (the pod's namespace).
	Namespace string
	// Labels are the workload's labels.
	Labels map[string]string
	// IPs are the pod's IP addresses; empty means {"10.0.0.1"}.
	IPs []string
	// InterceptionMode is the proxy metadata INTERCEPTION_MODE: REDIRECT,
	// TPROXY or NONE; "" means REDIRECT.
	InterceptionMode string
	// IstioVersion is the proxy's version; "" means "1.31.0".
	IstioVersion string
	// EnvoyStatusPort and EnvoyPrometheusPort are the node metadata
	// ENVOY_STATUS_PORT and ENVOY_PROMETHEUS_PORT, which every pilot-agent
	// sends (pilot/cmd/pilot-agent/options: 15021 and 15090 unless its
	// environment overrides them) and which istiod's
	// conflictWithReservedListener reads. 0 means pilot-agent's default;
	// -1 leaves the metadata unset (a proxy without them).
	EnvoyStatusPort     int
	EnvoyPrometheusPort int
}

// Pilot-agent's defaults for the static listener ports it reports.
const (
	DefaultEnvoyStatusPort     = 15021
	DefaultEnvoyPrometheusPort = 15090
)

func metadataPort(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// setup initialises a model.Proxy for p with ConfigGenTest.SetupProxy, which
// calls istiod's (*Proxy).SetSidecarScope (push_context.go getSidecarScope),
// SetServiceTargets, SetGatewaysForProxy and DiscoverIPMode.
func (o *Istiod) setup(p Proxy) (*model.Proxy, error) {
	if o.closed {
		return nil, fmt.Errorf("istiod oracle closed")
	}
	typ := model.NodeType(p.Type)
	if typ == "" {
		typ = model.SidecarProxy
	}
	ips := p.IPs
	if len(ips) == 0 {
		ips = []string{"10.0.0.1"}
	}
	version := p.IstioVersion
	if version == "" {
		version = "1.31.0"
	}
	labels := map[string]string{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	mp := &model.Proxy{
		Type:            typ,
		ConfigNamespace: p.Namespace,
		Labels:          labels,
		IPAddresses:     append([]string(nil), ips...),
		Metadata: &model.NodeMetadata{
			Namespace:        p.Namespace,
			Labels:           labels,
			InterceptionMode: model.TrafficInterceptionMode(p.InterceptionMode),
			IstioVersion:     version,

			EnvoyStatusPort:     metadataPort(p.EnvoyStatusPort, DefaultEnvoyStatusPort),
			EnvoyPrometheusPort: metadataPort(p.EnvoyPrometheusPort, DefaultEnvoyPrometheusPort),
		},
	}
	var out *model.Proxy
	err := o.f.run(func() { out = o.cg.SetupProxy(mp) })
	return out, err
}

// SidecarChoice is which Sidecar istiod applies to a proxy.
type SidecarChoice struct {
	// Default: istiod generated a default scope (no Sidecar applies;
	// Name is "default-sidecar").
	Default bool
	// Namespace/Name identify the Sidecar resource chosen (Namespace is
	// where the resource lives: the proxy's namespace or the root
	// namespace).
	Namespace string
	Name      string
	// ScopeNamespace is the SidecarScope's Namespace: the namespace it is
	// computed for (the proxy's config namespace).
	ScopeNamespace string
}

// String is "namespace/name" of the chosen Sidecar or "none/default".
func (c SidecarChoice) String() string {
	if c.Default {
		return "none/default"
	}
	return c.Namespace + "/" + c.Name
}

// SidecarFor answers which Sidecar istiod's SidecarScope resolution picks
// for the proxy: the SidecarScope that (*model.Proxy).SetSidecarScope sets
// (pilot/pkg/model/push_context.go getSidecarScope over the index
// initSidecarScopes builds: selector Sidecars first, each group by creation
// time, name, namespace; the root namespace's first selector-less Sidecar as
// the mesh default; routers and waypoints get a default scope). The
// resource's namespace is recovered with SidecarScope.DependsOnConfig, which
// holds the chosen Sidecar's key.
func (o *Istiod) SidecarFor(p Proxy) (SidecarChoice, error) {
	mp, err := o.setup(p)
	if err != nil {
		return SidecarChoice{}, err
	}
	return o.choiceOf(mp)
}

// ListenerAddress is one address of a listener.
type ListenerAddress struct {
	// IP and Port of a socket address; Pipe is a unix socket path.
	IP   string
	Port uint32
	Pipe string
}

// ListenerInfo is one listener istiod built, with the fields the project
// compares. Raw is the listener itself.
type ListenerInfo struct {
	Name string
	// Address is the primary address; Additional are additional_addresses.
	Address    ListenerAddress
	Additional []ListenerAddress
	// BindToPort is bind_to_port (unset means true).
	BindToPort bool
	// Direction is traffic_direction: OUTBOUND, INBOUND or UNSPECIFIED.
	Direction string
	Raw       *listener.Listener
}

// Listeners is istiod's listener output for one proxy.
type Listeners struct {
	// Listeners are all listeners except the two virtual ones, sorted by
	// name.
	Listeners []ListenerInfo
	// VirtualOutbound / VirtualInbound: the 15001 / 15006 capture
	// listeners (model.VirtualOutboundListenerName / VirtualInboundListenerName)
	// exist.
	VirtualOutbound bool
	VirtualInbound  bool
	// VirtualInboundListener is the 15006 listener itself, whose filter
	// chains carry the inbound ports that are not bound (nil if absent).
	VirtualInboundListener *listener.Listener
	// Scope is the SidecarScope choice the listeners were built with.
	Scope SidecarChoice
}

func toAddress(a *core.Address) ListenerAddress {
	if a == nil {
		return ListenerAddress{}
	}
	if p := a.GetPipe(); p != nil {
		return ListenerAddress{Pipe: p.GetPath()}
	}
	sa := a.GetSocketAddress()
	return ListenerAddress{IP: sa.GetAddress(), Port: sa.GetPortValue()}
}

// ListenersFor answers which listeners istiod builds for the proxy:
// ConfigGenTest.Listeners, i.e. (*ConfigGeneratorImpl).BuildListeners
// (pilot/pkg/networking/core/listener.go buildSidecarOutboundListeners and
// friends) over the push context. Note: dual-stack listeners additionally
// depend on Istio's ISTIO_DUAL_STACK feature flag
// (pilot/pkg/features.EnableDualStack, read from the environment at start).
func (o *Istiod) ListenersFor(p Proxy) (Listeners, error) {
	mp, err := o.setup(p)
	if err != nil {
		return Listeners{}, err
	}
	choice, err := o.choiceOf(mp)
	if err != nil {
		return Listeners{}, err
	}
	var ls []*listener.Listener
	if err := o.f.run(func() { ls = o.cg.Listeners(mp) }); err != nil {
		return Listeners{}, err
	}
	out := Listeners{Scope: choice}
	for _, l := range ls {
		switch l.GetName() {
		case model.VirtualOutboundListenerName:
			out.VirtualOutbound = true
			continue
		case model.VirtualInboundListenerName:
			out.VirtualInbound = true
			out.VirtualInboundListener = l
			continue
		}
		info := ListenerInfo{
			Name:       l.GetName(),
			Address:    toAddress(l.GetAddress()),
			BindToPort: l.GetBindToPort() == nil || l.GetBindToPort().GetValue(),
			Direction:  l.GetTrafficDirection().String(),
			Raw:        l,
		}
		for _, a := range l.GetAdditionalAddresses() {
			info.Additional = append(info.Additional, toAddress(a.GetAddress()))
		}
		out.Listeners = append(out.Listeners, info)
	}
	sort.Slice(out.Listeners, func(i, j int) bool { return out.Listeners[i].Name < out.Listeners[j].Name })
	return out, nil
}

func (o *Istiod) choiceOf(mp *model.Proxy) (SidecarChoice, error) {
	sc := mp.SidecarScope
	if sc == nil {
		return SidecarChoice{}, fmt.Errorf("istiod set no SidecarScope")
	}
	out := SidecarChoice{ScopeNamespace: sc.Namespace, Name: sc.Name}
	if sc.Sidecar == nil {
		out.Default = true
		return out, nil
	}
	for _, s := range o.state.Sidecars {
		if s.Name == sc.Name && sc.DependsOnConfig(model.ConfigKey{Kind: kind.Sidecar, Name: s.Name, Namespace: s.Namespace}, o.state.RootNamespace) {
			out.Namespace = s.Namespace
			return out, nil
		}
	}
	return SidecarChoice{}, fmt.Errorf("SidecarScope %s/%s matches no Sidecar of the state", sc.Namespace, sc.Name)
}

// SidecarFor builds istiod over state (NewIstiod), answers
// (*Istiod).SidecarFor for the proxy and closes it. For many proxies over
// one state, use NewIstiod once.
func SidecarFor(state State, p Proxy) (SidecarChoice, error) {
	o, err := NewIstiod(state)
	if err != nil {
		return SidecarChoice{}, err
	}
	defer o.Close()
	return o.SidecarFor(p)
}

// ListenersFor builds istiod over state (NewIstiod), answers
// (*Istiod).ListenersFor for the proxy and closes it.
func ListenersFor(state State, p Proxy) (Listeners, error) {
	o, err := NewIstiod(state)
	if err != nil {
		return Listeners{}, err
	}
	defer o.Close()
	return o.ListenersFor(p)
}
