package diff

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/test/istiodiff/oracle"
)

// The services of the generated clusters. Ports include the proxy's own
// (15001, 15006, 15021, 15090) so that istiod's reserved-port skips occur.
var listenerServices = []oracle.Service{
	{Namespace: "app", Name: "reviews", ClusterIP: "10.96.0.10", Ports: []oracle.ServicePort{{Name: "http", Port: 9080, Protocol: "HTTP"}}},
	{Namespace: "app", Name: "db", ClusterIP: "10.96.0.11", Ports: []oracle.ServicePort{{Name: "tcp", Port: 5432, Protocol: "TCP"}}},
	{Namespace: "app", Name: "mixed", ClusterIP: "10.96.0.12", Ports: []oracle.ServicePort{
		{Name: "auto", Port: 8080}, {Name: "status", Port: 15021, Protocol: "HTTP"}, {Name: "prom", Port: 15090, Protocol: "TCP"}}},
	{Namespace: "app", Name: "odd", ClusterIP: "10.96.0.13", Ports: []oracle.ServicePort{
		{Name: "out", Port: 15001, Protocol: "HTTP"}, {Name: "in", Port: 15006, Protocol: "TCP"}, {Name: "prom", Port: 15090}}},
	{Namespace: "other", Name: "api", ClusterIP: "10.96.1.10", Ports: []oracle.ServicePort{{Name: "grpc", Port: 7070, Protocol: "GRPC"}, {Name: "https", Port: 443, Protocol: "HTTPS"}}},
	{Namespace: "other", Name: "headless", ClusterIP: "None", Ports: []oracle.ServicePort{{Name: "mysql", Port: 3306, Protocol: "TCP"}, {Name: "http", Port: 80, Protocol: "HTTP"}}},
}

var listenerServiceEntries = []oracle.ServiceEntryObject{
	{Namespace: "ext", Name: "se-http", Created: t0, Spec: &networking.ServiceEntry{
		Hosts:      []string{"api.example.com"},
		Ports:      []*networking.ServicePort{{Number: 80, Protocol: "HTTP", Name: "http"}, {Number: 443, Protocol: "TLS", Name: "tls"}},
		Resolution: networking.ServiceEntry_DNS,
		Location:   networking.ServiceEntry_MESH_EXTERNAL,
	}},
	{Namespace: "ext", Name: "se-tcp", Created: t0, Spec: &networking.ServiceEntry{
		Hosts:      []string{"db.example.com"},
		Addresses:  []string{"240.240.0.1"},
		Ports:      []*networking.ServicePort{{Number: 9000, Protocol: "TCP", Name: "tcp"}, {Number: 15021, Protocol: "HTTP", Name: "odd"}},
		Resolution: networking.ServiceEntry_STATIC,
		Endpoints:  []*networking.WorkloadEntry{{Address: "1.1.1.1"}},
	}},
}

var (
	egressPortChoices  = []uint32{9080, 5432, 8080, 15021, 15090, 15001, 15006, 7070, 443, 3306, 80, 9000, 12345}
	listenerProtocols  = []string{"", "HTTP", "TCP", "GRPC", "HTTPS", "TLS", "HTTP_PROXY"}
	egressBindChoices  = []string{"", "", "", "127.0.0.1", "::1", "0.0.0.0", "::", "10.0.0.1"}
	listenerHostChoice = []string{"app/*", "./*", "other/*", "*/*", "ext/*", "*/api.example.com", "app/reviews.app.svc.cluster.local",
		"~app/db.app.svc.cluster.local", "*/*.example.com", "app/mixed.app.svc.cluster.local", "~other/*"}
	ingressPortChoices = []uint32{8080, 9080, 5000, 15021, 15090, 15001, 15006}
	ingressBindChoices = []string{"", "", "0.0.0.0", "::", "10.0.0.1", "127.0.0.1", "fd00::1"}
	captureModes       = []networking.CaptureMode{networking.CaptureMode_DEFAULT, networking.CaptureMode_NONE, networking.CaptureMode_IPTABLES}
)

// reservedListenerPorts are the ports of the proxy's own listeners in the
// generated clusters (mesh defaults and pilot-agent's defaults).
var reservedListenerPorts = []uint32{15001, 15006, 15021, 15090}

func genListenerHosts(r *rand.Rand) []string {
	hosts := []string{pick(r, listenerHostChoice...)}
	if chance(r, 0.35) {
		if h := pick(r, listenerHostChoice...); h != hosts[0] {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func genListenerSidecar(r *rand.Rand) *networking.Sidecar {
	s := &networking.Sidecar{}
	portOrder := slices.Clone(egressPortChoices)
	r.Shuffle(len(portOrder), func(i, j int) { portOrder[i], portOrder[j] = portOrder[j], portOrder[i] })
	for i, n := 0, r.Intn(4); i < n; i++ {
		l := &networking.IstioEgressListener{Hosts: genListenerHosts(r), CaptureMode: pick(r, captureModes...)}
		if chance(r, 0.12) {
			l.Port = &networking.SidecarPort{Number: 0, Protocol: pick(r, "HTTP", "TCP"), Name: "uds"}
			l.Bind = pick(r, fmt.Sprintf("unix:///var/run/e%d.sock", i), fmt.Sprintf("unix://@e%d", i))
			l.CaptureMode = pick(r, networking.CaptureMode_DEFAULT, networking.CaptureMode_NONE)
		} else {
			l.Port = &networking.SidecarPort{Number: portOrder[i], Protocol: pick(r, listenerProtocols...), Name: "p"}
			l.Bind = pick(r, egressBindChoices...)
		}
		s.Egress = append(s.Egress, l)
	}
	if len(s.Egress) == 0 || chance(r, 0.6) {
		l := &networking.IstioEgressListener{Hosts: genListenerHosts(r), CaptureMode: pick(r, captureModes...)}
		if chance(r, 0.25) {
			// Istio admits a bind on the port-less listener (the project
			// does not, but it still reports its effective binds).
			l.Bind = pick(r, "127.0.0.1", "::1", "0.0.0.0", "unix:///var/run/all.sock")
		}
		s.Egress = append(s.Egress, l)
	}
	ports := slices.Clone(ingressPortChoices)
	r.Shuffle(len(ports), func(i, j int) { ports[i], ports[j] = ports[j], ports[i] })
	for i, n := 0, r.Intn(3); i < n; i++ {
		s.Ingress = append(s.Ingress, &networking.IstioIngressListener{
			Port:            &networking.SidecarPort{Number: ports[i], Protocol: pick(r, "HTTP", "TCP", "", "GRPC"), Name: "in"},
			Bind:            pick(r, ingressBindChoices...),
			CaptureMode:     pick(r, captureModes...),
			DefaultEndpoint: "127.0.0.1:8080",
		})
	}
	return s
}

// listenerProxy is one generated proxy: interception mode and IP family.
type listenerProxy struct {
	mode   string
	family mesh.IPFamily
	ips    []string
}

var listenerProxies = func() []listenerProxy {
	var out []listenerProxy
	for _, mode := range []string{mesh.InterceptionRedirect, mesh.InterceptionTProxy, mesh.InterceptionNone} {
		out = append(out,
			listenerProxy{mode, mesh.IPv4, []string{"10.0.0.1"}},
			listenerProxy{mode, mesh.IPv6, []string{"fd00::1"}},
			listenerProxy{mode, mesh.DualStack, []string{"10.0.0.1", "fd00::1"}})
	}
	return out
}()

// listenerState is one generated cluster: the services, and the Sidecar
// under test F in namespace app. The state also holds, each selected by a
// label, P (F without its port-less listener, to tell which listeners the
// port-less one added), and F defaulted by the project for IPv4 and for
// IPv6.
type listenerState struct {
	index    int
	services []oracle.Service
	entries  []oracle.ServiceEntryObject
	spec     *networking.Sidecar
	// portless is the index of F's port-less egress listener, -1 if none.
	portless int
	// defaulted are F as the project's mutating webhook stores it, per IP
	// family (only when defaulting changed it).
	defaulted map[mesh.IPFamily]*sidecar.Sidecar
}

func (s listenerState) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "state #%d\n  services:", s.index)
	for _, svc := range s.services {
		var ports []string
		for _, p := range svc.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
		fmt.Fprintf(&b, " %s/%s(%s %s)", svc.Namespace, svc.Name, svc.ClusterIP, strings.Join(ports, ","))
	}
	for _, se := range s.entries {
		var ports []string
		for _, p := range se.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", p.Number, p.Protocol))
		}
		fmt.Fprintf(&b, " SE %s/%s(%s %s)", se.Namespace, se.Name, strings.Join(se.Spec.Hosts, ","), strings.Join(ports, ","))
	}
	raw, _ := sidecarJSON("app", "f", s.spec)
	fmt.Fprintf(&b, "\n  Sidecar app/f spec %s", compactJSON(raw))
	return b.String()
}

const variantLabel = "variant"

func withSelector(spec *networking.Sidecar, variant string) *networking.Sidecar {
	out := &networking.Sidecar{
		WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{variantLabel: variant}},
		Egress:           spec.Egress,
		Ingress:          spec.Ingress,
	}
	return out
}

func genListenerState(r *rand.Rand, index int) (listenerState, bool) {
	st := listenerState{index: index, portless: -1}
	for _, svc := range listenerServices {
		if chance(r, 0.8) {
			st.services = append(st.services, svc)
		}
	}
	for _, se := range listenerServiceEntries {
		if chance(r, 0.6) {
			st.entries = append(st.entries, se)
		}
	}
	// Only Sidecars Istio's validation admits.
	for try := 0; try < 50; try++ {
		spec := genListenerSidecar(r)
		if _, err := oracle.ValidateSidecar("app", "f", spec); err != "" {
			continue
		}
		st.spec = spec
		break
	}
	if st.spec == nil {
		return st, false
	}
	for i, l := range st.spec.Egress {
		if l.Port == nil {
			st.portless = i
		}
	}
	st.defaulted = map[mesh.IPFamily]*sidecar.Sidecar{}
	for _, family := range []mesh.IPFamily{mesh.IPv4, mesh.IPv6, mesh.DualStack} {
		raw, err := sidecarJSON("app", "f", st.spec)
		if err != nil {
			return st, false
		}
		var generic map[string]any
		if err := json.Unmarshal(raw, &generic); err != nil {
			return st, false
		}
		if changes, _ := defaults.Apply(generic, defaults.Options{IPFamily: family}); !hasBindChange(changes) {
			continue
		}
		b, _ := json.Marshal(generic)
		obj, errs := sidecar.Decode(b)
		if len(errs) > 0 {
			return st, false
		}
		st.defaulted[family] = obj
	}
	return st, true
}

func hasBindChange(changes []defaults.Change) bool {
	for _, c := range changes {
		if strings.HasSuffix(c.Path, ".bind") {
			return true
		}
	}
	return false
}

// portEntries is F without its port-less listener (P), nil when F has no
// port-less listener or nothing else.
func (s listenerState) portEntries() *networking.Sidecar {
	if s.portless < 0 || len(s.spec.Egress) == 1 {
		return nil
	}
	p := &networking.Sidecar{Ingress: s.spec.Ingress}
	for i, l := range s.spec.Egress {
		if i != s.portless {
			p.Egress = append(p.Egress, l)
		}
	}
	return p
}

func (s listenerState) oracleState(meshPortsMoved bool) oracle.State {
	st := oracle.State{Services: s.services, ServiceEntries: s.entries}
	add := func(variant string, spec *networking.Sidecar) {
		st.Sidecars = append(st.Sidecars, oracle.SidecarObject{Namespace: "app", Name: variant, Created: t0, Spec: withSelector(spec, variant)})
	}
	add("f", s.spec)
	if p := s.portEntries(); p != nil {
		add("p", p)
	}
	for _, family := range []mesh.IPFamily{mesh.IPv4, mesh.IPv6, mesh.DualStack} {
		if obj, ok := s.defaulted[family]; ok {
			add("d-"+string(family), &obj.Spec)
		}
	}
	if meshPortsMoved {
		st.ProxyListenPort, st.ProxyInboundListenPort = 25001, 25006
	}
	return st
}

func (s listenerState) hasReservedPortEntry() bool {
	for _, l := range s.spec.Egress {
		if l.Port != nil && slices.Contains(reservedListenerPorts, l.Port.Number) {
			return true
		}
	}
	for _, l := range s.spec.Ingress {
		if slices.Contains(reservedListenerPorts, l.GetPort().GetNumber()) {
			return true
		}
	}
	return false
}

// addressOf prints a listener address as the project writes binds: the IP,
// or unix:// and the socket path.
func addressOf(a oracle.ListenerAddress) string {
	if a.Pipe != "" {
		return sidecar.UnixPrefix + a.Pipe
	}
	return a.IP
}

func addressesOf(l oracle.ListenerInfo) []string {
	out := []string{addressOf(l.Address)}
	for _, a := range l.Additional {
		out = append(out, addressOf(a))
	}
	return out
}

func listenerKey(l oracle.ListenerInfo) string {
	return fmt.Sprintf("%s:%d", addressOf(l.Address), l.Address.Port)
}

func describeListeners(ls []oracle.ListenerInfo) string {
	if len(ls) == 0 {
		return "none"
	}
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s %v bind_to_port=%v", l.Name, addressesOf(l), l.BindToPort))
	}
	return strings.Join(parts, "; ")
}

func outboundListeners(ls oracle.Listeners) []oracle.ListenerInfo {
	var out []oracle.ListenerInfo
	for _, l := range ls.Listeners {
		if l.Direction == "OUTBOUND" {
			out = append(out, l)
		}
	}
	return out
}

// egressAttribution splits istiod's outbound listeners among F's egress
// listeners: a listener with a port, or a unix socket, owns the listeners P
// has on its port or socket; the port-less listener owns what F has beyond
// P (istiod locks P's listeners before it adds the port-less one's).
func egressAttribution(spec *networking.Sidecar, portless int, f, p []oracle.ListenerInfo) (map[int][]oracle.ListenerInfo, []oracle.ListenerInfo) {
	owned := map[int][]oracle.ListenerInfo{}
	var unowned []oracle.ListenerInfo
	if portless >= 0 && len(spec.Egress) == 1 {
		owned[portless] = f
		return owned, nil
	}
	if portless < 0 {
		p = f
	}
	inP := map[string]bool{}
	for _, l := range p {
		inP[listenerKey(l)] = true
		found := false
		for i, e := range spec.Egress {
			if e.Port == nil {
				continue
			}
			if (e.Port.Number == 0 && l.Address.Pipe != "" && sidecar.UnixPrefix+l.Address.Pipe == e.Bind) ||
				(e.Port.Number != 0 && l.Address.Pipe == "" && l.Address.Port == e.Port.Number) {
				owned[i] = append(owned[i], l)
				found = true
				break
			}
		}
		if !found {
			unowned = append(unowned, l)
		}
	}
	if portless >= 0 {
		for _, l := range f {
			if !inP[listenerKey(l)] {
				owned[portless] = append(owned[portless], l)
			}
		}
	}
	return owned, unowned
}

// TestEffectiveListeners compares defaults.Effective with the listeners
// istiod builds over generated clusters, for every combination of
// interception mode and IP family. Its subtests report the egress
// listeners (the brief's comparison), the ingress listeners, and whether
// the project's defaulting changes what istiod builds.
func TestEffectiveListeners(t *testing.T) {
	seed := seedFor(t, 3003)
	states := scaled(t, 300)
	rec := newRecorder(t, "effective egress binds", seed)
	irec := newRecorder(t, "effective ingress listeners", seed)
	drec := newRecorder(t, "defaulted Sidecar builds the same listeners", seed)
	defer func() {
		for _, sub := range []struct {
			name string
			r    *recorder
		}{{"egress", rec}, {"ingress", irec}, {"defaulting", drec}} {
			r := sub.r
			t.Run(sub.name, func(t *testing.T) {
				r.t = t
				r.finish()
			})
		}
	}()
	parallel(states, func(i int) {
		st, ok := genListenerState(rand.New(rand.NewSource(seed*1_000_003+int64(i))), i)
		if !ok {
			rec.skip("no Sidecar Istio admits after 50 tries")
			return
		}
		raw, err := sidecarJSON("app", "f", st.spec)
		if err != nil {
			rec.disagree("cannot write the Sidecar as JSON", st.describe()+"\n  "+err.Error())
			return
		}
		obj, errs := sidecar.Decode(raw)
		if len(errs) > 0 {
			rec.disagree("the project cannot decode a Sidecar Istio admits", st.describe()+"\n  "+errs.ToAggregate().Error())
			return
		}
		o, err := oracle.NewIstiod(st.oracleState(false))
		if err != nil {
			rec.disagree("oracle error", st.describe()+"\n  "+err.Error())
			return
		}
		defer o.Close()
		// The same cluster with the proxy's own ports moved away: what
		// istiod builds when no listener conflicts with them.
		var moved *oracle.Istiod
		if st.hasReservedPortEntry() {
			moved, err = oracle.NewIstiod(st.oracleState(true))
			if err != nil {
				rec.disagree("oracle error", st.describe()+"\n  "+err.Error())
				return
			}
			defer moved.Close()
		}
		for _, px := range listenerProxies {
			query := func(o *oracle.Istiod, variant string, unreserved bool) (oracle.Listeners, error) {
				p := oracle.Proxy{Namespace: "app", Labels: map[string]string{variantLabel: variant}, IPs: px.ips, InterceptionMode: px.mode}
				if unreserved {
					p.EnvoyStatusPort, p.EnvoyPrometheusPort = 25021, 25090
				}
				ls, err := o.ListenersFor(p)
				if err == nil && ls.Scope.String() != "app/"+variant {
					err = fmt.Errorf("the proxy got Sidecar %s, not app/%s", ls.Scope, variant)
				}
				return ls, err
			}
			f, err := query(o, "f", false)
			if err != nil {
				rec.disagree("oracle error", st.describe()+"\n  "+err.Error())
				return
			}
			fOut := outboundListeners(f)
			var pOut []oracle.ListenerInfo
			if st.portEntries() != nil {
				p, err := query(o, "p", false)
				if err != nil {
					rec.disagree("oracle error", st.describe()+"\n  "+err.Error())
					return
				}
				pOut = outboundListeners(p)
			}
			var movedOwned map[int][]oracle.ListenerInfo
			var movedF oracle.Listeners
			if moved != nil {
				mf, err := query(moved, "f", true)
				if err != nil {
					rec.disagree("oracle error", st.describe()+"\n  "+err.Error())
					return
				}
				movedF = mf
				var mp []oracle.ListenerInfo
				if st.portEntries() != nil {
					m, err := query(moved, "p", true)
					if err != nil {
						rec.disagree("oracle error", st.describe()+"\n  "+err.Error())
						return
					}
					mp = outboundListeners(m)
				}
				movedOwned, _ = egressAttribution(st.spec, st.portless, outboundListeners(mf), mp)
			}
			egress, ingress := defaults.Effective(obj, defaults.EffectiveOptions{InterceptionMode: px.mode, IPFamily: px.family})
			proxyText := fmt.Sprintf("proxy interception %s, %s %v", px.mode, px.family, px.ips)
			owned, unowned := egressAttribution(st.spec, st.portless, fOut, pOut)
			if len(unowned) > 0 {
				rec.disagree("istiod built outbound listeners no egress listener explains", fmt.Sprintf("%s\n  %s\n  listeners: %s", st.describe(), proxyText, describeListeners(unowned)))
			}
			for i, e := range egress {
				compareEgress(rec, st, proxyText, i, e, owned[i], movedOwned, moved != nil)
			}
			for j, e := range ingress {
				var movedLs *oracle.Listeners
				if moved != nil {
					movedLs = &movedF
				}
				compareIngress(irec, st, proxyText, px, j, e, f, movedLs)
			}
			compareDefaulted(drec, st, proxyText, px, o, f)
		}
	})
}

func compareEgress(rec *recorder, st listenerState, proxyText string, i int, e defaults.EffectiveListener, built []oracle.ListenerInfo, movedOwned map[int][]oracle.ListenerInfo, haveMoved bool) {
	detail := func() string {
		eJSON, _ := json.Marshal(e)
		return fmt.Sprintf("%s\n  %s\n  egress[%d]\n  project: %s\n  istiod:  %s", st.describe(), proxyText, i, eJSON, describeListeners(built))
	}
	portless := st.spec.Egress[i].Port == nil
	if len(built) == 0 {
		switch {
		case e.Skipped != "":
			rec.count("skipped by both")
			rec.ok()
		case portless:
			rec.skip("port-less listener: istiod built nothing from it")
		case haveMoved && len(movedOwned[i]) > 0:
			rec.disagree("istiod skips the listener, the project does not say so", detail()+"\n  (with the proxy's own ports moved away istiod builds "+describeListeners(movedOwned[i])+")")
		default:
			rec.skip("listener with a port: istiod built nothing (no imported service has the port)")
		}
		return
	}
	if e.Skipped != "" {
		rec.disagree("the project says skipped, istiod builds listeners", detail())
		return
	}
	for _, l := range built {
		if l.BindToPort != e.BindToPort {
			rec.disagree("bind_to_port", detail())
			return
		}
		switch {
		case e.BindToPort || len(e.Binds) > 0:
			if got := addressesOf(l); !slices.Equal(got, e.Binds) {
				rec.disagree("bound addresses", detail())
				return
			}
		default:
			rec.count("addresses not compared (not bound, no bind: service VIP or wildcard)")
		}
	}
	if portless {
		rec.count("port-less compared")
	} else {
		rec.count("with a port compared")
	}
	if e.BindToPort {
		rec.count("bound")
	}
	rec.ok()
}

// compareIngress checks an ingress listener of the Sidecar: bound ones are
// real INBOUND listeners on the written bind (or the pod's IP); the others
// are filter chains of the virtual inbound listener, which exists only when
// iptables redirects. An entry the project does not mark skipped must be
// built.
func compareIngress(rec *recorder, st listenerState, proxyText string, px listenerProxy, j int, e defaults.EffectiveListener, f oracle.Listeners, moved *oracle.Listeners) {
	var bound []oracle.ListenerInfo
	for _, l := range f.Listeners {
		if l.Direction == "INBOUND" && l.Address.Port == e.Port {
			bound = append(bound, l)
		}
	}
	inVirtual := virtualInboundHasPort(f, e.Port)
	detail := func() string {
		eJSON, _ := json.Marshal(e)
		return fmt.Sprintf("%s\n  %s\n  ingress[%d]\n  project: %s\n  istiod:  bound listeners %s; virtual inbound listener %v, filter chain for port %d: %v",
			st.describe(), proxyText, j, eJSON, describeListeners(bound), f.VirtualInbound, e.Port, inVirtual)
	}
	built := len(bound) > 0 || inVirtual
	if !built {
		switch {
		case e.Skipped != "":
			rec.ok()
		case moved != nil && (virtualInboundHasPort(*moved, e.Port) || hasInbound(*moved, e.Port)):
			rec.disagree("ingress: istiod skips the listener (the proxy's own port), the project does not say so [known: TestListenerFindings, ingress on the status/Prometheus port]", detail())
		case px.mode == mesh.InterceptionNone && !e.BindToPort:
			rec.disagree("ingress: istiod builds nothing for it, the project does not say so [known: TestListenerFindings, captureMode IPTABLES under interception NONE]", detail())
		default:
			rec.disagree("ingress: istiod builds nothing for it, the project does not say so [NEW]", detail())
		}
		return
	}
	switch {
	case e.Skipped != "":
		rec.disagree("ingress: the project says skipped, istiod builds it", detail())
	case e.BindToPort != (len(bound) > 0):
		rec.disagree("ingress: bind_to_port", detail())
	case e.BindToPort && len(bound) != 1:
		rec.disagree("ingress: several bound listeners", detail())
	case e.BindToPort && len(e.Binds) > 0 && !slices.Equal(addressesOf(bound[0]), e.Binds):
		rec.disagree("ingress: bound address", detail())
	case e.BindToPort && len(e.Binds) == 0 && addressOf(bound[0].Address) != px.ips[0]:
		// The project's note: "binds to the pod's IP".
		rec.disagree("ingress: bound address without a bind is not the pod's IP", detail())
	default:
		if e.BindToPort {
			rec.count("bound")
		} else {
			rec.count("virtual inbound filter chain")
		}
		rec.ok()
	}
}

func hasInbound(ls oracle.Listeners, port uint32) bool {
	for _, l := range ls.Listeners {
		if l.Direction == "INBOUND" && l.Address.Port == port {
			return true
		}
	}
	return false
}

func virtualInboundHasPort(ls oracle.Listeners, port uint32) bool {
	if ls.VirtualInboundListener == nil {
		return false
	}
	for _, fc := range ls.VirtualInboundListener.GetFilterChains() {
		if fc.GetFilterChainMatch().GetDestinationPort().GetValue() == port {
			return true
		}
	}
	return false
}

// compareDefaulted checks that the project's defaulting (the bind it writes
// for captureMode NONE listeners, for the proxy's IP family) does not change
// what istiod builds.
func compareDefaulted(rec *recorder, st listenerState, proxyText string, px listenerProxy, o *oracle.Istiod, f oracle.Listeners) {
	obj, ok := st.defaulted[px.family]
	if !ok {
		return
	}
	variant := "d-" + string(px.family)
	d, err := o.ListenersFor(oracle.Proxy{Namespace: "app", Labels: map[string]string{variantLabel: variant}, IPs: px.ips, InterceptionMode: px.mode})
	if err != nil {
		rec.disagree("oracle error", err.Error())
		return
	}
	summary := func(ls oracle.Listeners) []string {
		var out []string
		for _, l := range ls.Listeners {
			out = append(out, fmt.Sprintf("%s %s %v bind_to_port=%v", l.Direction, l.Name, addressesOf(l), l.BindToPort))
		}
		slices.Sort(out)
		return out
	}
	got, want := summary(d), summary(f)
	if slices.Equal(got, want) {
		rec.ok()
		return
	}
	dRaw, _ := protojson.Marshal(&obj.Spec)
	rec.disagree("defaulting changes istiod's listeners", fmt.Sprintf("%s\n  %s\n  defaulted (%s) spec %s\n  istiod for the Sidecar as written: %s\n  istiod for the defaulted Sidecar:  %s",
		st.describe(), proxyText, px.family, dRaw, strings.Join(want, "; "), strings.Join(got, "; ")))
}

// TestEffectiveEgressHandPicked compares every combination the brief names:
// captureMode DEFAULT/NONE/IPTABLES, bind empty/127.0.0.1/::1/0.0.0.0, an
// HTTP and a TCP port, a unix socket with port 0, and the port-less
// listener, under REDIRECT/TPROXY/NONE for IPv4, IPv6 and dual-stack pods.
// Each Sidecar has that one egress listener and imports app/*.
func TestEffectiveEgressHandPicked(t *testing.T) {
	var specs []*networking.Sidecar
	for _, port := range []*networking.SidecarPort{{Number: 9080, Protocol: "HTTP", Name: "http"}, {Number: 5432, Protocol: "TCP", Name: "tcp"}, {Number: 15021, Protocol: "HTTP", Name: "status"}} {
		for _, cm := range captureModes {
			for _, bind := range []string{"", "127.0.0.1", "::1", "0.0.0.0"} {
				specs = append(specs, &networking.Sidecar{Egress: []*networking.IstioEgressListener{{Port: port, CaptureMode: cm, Bind: bind, Hosts: []string{"app/*"}}}})
			}
		}
	}
	for _, cm := range []networking.CaptureMode{networking.CaptureMode_DEFAULT, networking.CaptureMode_NONE} {
		for _, bind := range []string{"unix:///var/run/app.sock", "unix://@app"} {
			specs = append(specs, &networking.Sidecar{Egress: []*networking.IstioEgressListener{{
				Port: &networking.SidecarPort{Number: 0, Protocol: "HTTP", Name: "uds"}, CaptureMode: cm, Bind: bind, Hosts: []string{"app/*"},
			}}})
		}
	}
	for _, cm := range captureModes {
		for _, bind := range []string{"", "127.0.0.1", "::1"} {
			specs = append(specs, &networking.Sidecar{Egress: []*networking.IstioEgressListener{{CaptureMode: cm, Bind: bind, Hosts: []string{"app/*"}}}})
		}
	}
	state := oracle.State{Services: listenerServices[:3]}
	for k, spec := range specs {
		if _, err := oracle.ValidateSidecar("app", "s", spec); err != "" {
			t.Fatalf("hand-picked Sidecar %d is not valid for Istio: %s", k, err)
		}
		variant := fmt.Sprint(k)
		state.Sidecars = append(state.Sidecars, oracle.SidecarObject{Namespace: "app", Name: "s" + variant, Created: t0, Spec: withSelector(spec, variant)})
	}
	o, err := oracle.NewIstiod(state)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rec := newRecorder(t, "hand-picked egress listeners", 0)
	defer rec.finish()
	for k, spec := range specs {
		raw, err := sidecarJSON("app", "s", spec)
		if err != nil {
			t.Fatal(err)
		}
		obj, errs := sidecar.Decode(raw)
		if len(errs) > 0 {
			t.Fatalf("decode: %v", errs)
		}
		st := listenerState{index: k, services: state.Services, spec: spec, portless: -1}
		if spec.Egress[0].Port == nil {
			st.portless = 0
		}
		for _, px := range listenerProxies {
			ls, err := o.ListenersFor(oracle.Proxy{Namespace: "app", Labels: map[string]string{variantLabel: fmt.Sprint(k)}, IPs: px.ips, InterceptionMode: px.mode})
			if err != nil {
				t.Fatal(err)
			}
			egress, _ := defaults.Effective(obj, defaults.EffectiveOptions{InterceptionMode: px.mode, IPFamily: px.family})
			built := outboundListeners(ls)
			if len(built) == 0 && egress[0].Skipped == "" {
				rec.disagree("istiod skips the listener, the project does not say so", fmt.Sprintf("%s\n  proxy interception %s, %s %v\n  project: %+v", st.describe(), px.mode, px.family, px.ips, egress[0]))
				continue
			}
			// The only entry owns every outbound listener; the imported
			// services always have listeners on 9080 and 5432 and on the
			// status port (app/mixed), so an empty result is a skip.
			compareEgress(rec, st, fmt.Sprintf("proxy interception %s, %s %v", px.mode, px.family, px.ips), 0, egress[0], built, nil, false)
		}
	}
}
