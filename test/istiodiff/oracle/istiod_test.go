package oracle

import (
	"testing"
	"time"

	networking "istio.io/api/networking/v1alpha3"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sidecar(ns, name string, created time.Duration, selector map[string]string, hasSelector bool) SidecarObject {
	spec := &networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"*/*"}}}}
	if hasSelector {
		spec.WorkloadSelector = &networking.WorkloadSelector{Labels: selector}
	}
	return SidecarObject{Namespace: ns, Name: name, Created: t0.Add(created), Spec: spec}
}

func TestSidecarFor(t *testing.T) {
	app := map[string]string{"app": "reviews"}
	cases := []struct {
		name     string
		sidecars []SidecarObject
		proxy    Proxy
		want     string // namespace/name or none/default
	}{
		{name: "no Sidecar: default scope",
			proxy: Proxy{Namespace: "app", Labels: app}, want: "none/default"},
		{name: "selector Sidecar beats namespace-wide",
			sidecars: []SidecarObject{
				sidecar("app", "ns-wide", 0, nil, false),
				sidecar("app", "selected", time.Hour, app, true),
			},
			proxy: Proxy{Namespace: "app", Labels: app}, want: "app/selected"},
		{name: "non-matching selector falls back to namespace-wide",
			sidecars: []SidecarObject{
				sidecar("app", "ns-wide", time.Hour, nil, false),
				sidecar("app", "selected", 0, map[string]string{"app": "ratings"}, true),
			},
			proxy: Proxy{Namespace: "app", Labels: app}, want: "app/ns-wide"},
		{name: "non-matching selector and no namespace-wide falls to the root default",
			sidecars: []SidecarObject{
				sidecar("istio-system", "mesh-default", time.Hour, nil, false),
				sidecar("app", "selected", 0, map[string]string{"app": "ratings"}, true),
			},
			proxy: Proxy{Namespace: "app", Labels: app}, want: "istio-system/mesh-default"},
		{name: "empty selector matches every pod and beats namespace-wide",
			sidecars: []SidecarObject{
				sidecar("app", "ns-wide", 0, nil, false),
				sidecar("app", "empty", time.Hour, nil, true),
			},
			proxy: Proxy{Namespace: "app", Labels: map[string]string{"x": "y"}}, want: "app/empty"},
		{name: "older selector Sidecar wins",
			sidecars: []SidecarObject{
				sidecar("app", "b-old", 0, app, true),
				sidecar("app", "a-new", time.Hour, app, true),
			},
			proxy: Proxy{Namespace: "app", Labels: app}, want: "app/b-old"},
		{name: "same creation time: name order",
			sidecars: []SidecarObject{
				sidecar("app", "b", 0, app, true),
				sidecar("app", "a", 0, app, true),
			},
			proxy: Proxy{Namespace: "app", Labels: app}, want: "app/a"},
		{name: "older namespace-wide wins",
			sidecars: []SidecarObject{
				sidecar("app", "a-new", time.Hour, nil, false),
				sidecar("app", "b-old", 0, nil, false),
			},
			proxy: Proxy{Namespace: "app"}, want: "app/b-old"},
		{name: "root namespace default applies elsewhere",
			sidecars: []SidecarObject{sidecar("istio-system", "mesh-default", 0, nil, false)},
			proxy:    Proxy{Namespace: "app", Labels: app}, want: "istio-system/mesh-default"},
		{name: "namespace Sidecar beats root default",
			sidecars: []SidecarObject{
				sidecar("istio-system", "mesh-default", 0, nil, false),
				sidecar("app", "local", time.Hour, nil, false),
			},
			proxy: Proxy{Namespace: "app"}, want: "app/local"},
		{name: "root selector Sidecar does not apply to other namespaces",
			sidecars: []SidecarObject{sidecar("istio-system", "root-selected", 0, app, true)},
			proxy:    Proxy{Namespace: "app", Labels: app}, want: "none/default"},
		{name: "first selector-less root Sidecar is the mesh default",
			sidecars: []SidecarObject{
				sidecar("istio-system", "z-old", 0, nil, false),
				sidecar("istio-system", "a-new", time.Hour, nil, false),
			},
			proxy: Proxy{Namespace: "app"}, want: "istio-system/z-old"},
		{name: "custom root namespace",
			sidecars: []SidecarObject{sidecar("mesh-root", "mesh-default", 0, nil, false)},
			proxy:    Proxy{Namespace: "app"}, want: "mesh-root/mesh-default"},
		{name: "Sidecar in another namespace does not apply",
			sidecars: []SidecarObject{sidecar("other", "s", 0, nil, false)},
			proxy:    Proxy{Namespace: "app"}, want: "none/default"},
		{name: "router gets the default scope",
			sidecars: []SidecarObject{sidecar("app", "ns-wide", 0, nil, false), sidecar("istio-system", "mesh-default", 0, nil, false)},
			proxy:    Proxy{Type: Router, Namespace: "app"}, want: "none/default"},
		{name: "waypoint gets the default scope",
			sidecars: []SidecarObject{sidecar("app", "selected", 0, nil, true)},
			proxy:    Proxy{Type: Waypoint, Namespace: "app"}, want: "none/default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := ""
			if tc.name == "custom root namespace" {
				root = "mesh-root"
			}
			got, err := SidecarFor(State{RootNamespace: root, Sidecars: tc.sidecars}, tc.proxy)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("got %s (%+v), want %s", got, got, tc.want)
			}
			if got.ScopeNamespace != tc.proxy.Namespace {
				t.Errorf("scope namespace %q, want %q", got.ScopeNamespace, tc.proxy.Namespace)
			}
		})
	}
}

func TestIstiodReuse(t *testing.T) {
	o, err := NewIstiod(State{Sidecars: []SidecarObject{
		sidecar("app", "ns-wide", 0, nil, false),
		sidecar("app", "selected", 0, map[string]string{"app": "a"}, true),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for i := 0; i < 3; i++ {
		for labels, want := range map[string]string{"a": "app/selected", "b": "app/ns-wide"} {
			got, err := o.SidecarFor(Proxy{Namespace: "app", Labels: map[string]string{"app": labels}})
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want {
				t.Errorf("app=%s: got %s, want %s", labels, got, want)
			}
		}
	}
}

func reviewsState(egress ...*networking.IstioEgressListener) State {
	st := State{
		Services: []Service{{
			Namespace: "app", Name: "reviews", ClusterIP: "10.96.0.10",
			Ports: []ServicePort{{Name: "http", Port: 9080, Protocol: "HTTP"}},
		}, {
			Namespace: "app", Name: "db", ClusterIP: "10.96.0.11",
			Ports: []ServicePort{{Name: "tcp", Port: 5432, Protocol: "TCP"}},
		}},
	}
	if len(egress) > 0 {
		st.Sidecars = []SidecarObject{{Namespace: "app", Name: "s", Created: t0, Spec: &networking.Sidecar{Egress: egress}}}
	}
	return st
}

func byPort(ls Listeners, port uint32) []ListenerInfo {
	var out []ListenerInfo
	for _, l := range ls.Listeners {
		if l.Address.Port == port && l.Direction == "OUTBOUND" {
			out = append(out, l)
		}
	}
	return out
}

func TestListenersCaptureNoneBindsLoopback(t *testing.T) {
	st := reviewsState(&networking.IstioEgressListener{
		Port:        &networking.SidecarPort{Number: 9080, Protocol: "HTTP", Name: "http"},
		CaptureMode: networking.CaptureMode_NONE,
		Hosts:       []string{"app/*"},
	})
	o, err := NewIstiod(st)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	cases := []struct {
		name       string
		ips        []string
		primary    string
		additional []string
	}{
		{"IPv4", []string{"10.0.0.1"}, "127.0.0.1", nil},
		{"IPv6", []string{"fd00::1"}, "::1", nil},
		{"dual stack", []string{"10.0.0.1", "fd00::1"}, "127.0.0.1", []string{"::1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := o.ListenersFor(Proxy{Namespace: "app", IPs: tc.ips})
			if err != nil {
				t.Fatal(err)
			}
			if ls.Scope.String() != "app/s" {
				t.Fatalf("scope %s", ls.Scope)
			}
			got := byPort(ls, 9080)
			if len(got) != 1 {
				t.Fatalf("listeners on 9080: %+v (all %+v)", got, ls.Listeners)
			}
			l := got[0]
			if l.Address.IP != tc.primary || !l.BindToPort {
				t.Errorf("listener %s at %+v bind %v, want %s bound", l.Name, l.Address, l.BindToPort, tc.primary)
			}
			var extra []string
			for _, a := range l.Additional {
				extra = append(extra, a.IP)
			}
			if len(extra) != len(tc.additional) || (len(extra) > 0 && extra[0] != tc.additional[0]) {
				t.Errorf("additional addresses %v, want %v", extra, tc.additional)
			}
			if !ls.VirtualOutbound || !ls.VirtualInbound {
				t.Errorf("virtual listeners missing under REDIRECT: %+v", ls)
			}
		})
	}
}

func TestListenersInterceptionNone(t *testing.T) {
	cases := []struct {
		name  string
		state State
	}{
		{"default scope", reviewsState()},
		{"egress with port, default capture", reviewsState(&networking.IstioEgressListener{
			Port:  &networking.SidecarPort{Number: 9080, Protocol: "HTTP", Name: "http"},
			Hosts: []string{"app/*"},
		}, &networking.IstioEgressListener{Hosts: []string{"*/*"}})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"NONE", "REDIRECT", "TPROXY"} {
				ls, err := ListenersFor(tc.state, Proxy{Namespace: "app", InterceptionMode: mode})
				if err != nil {
					t.Fatal(err)
				}
				out9080, out5432 := byPort(ls, 9080), byPort(ls, 5432)
				if len(out9080) != 1 || len(out5432) != 1 {
					t.Fatalf("%s: listeners %+v", mode, ls.Listeners)
				}
				for _, l := range append(out9080, out5432...) {
					if mode == "NONE" {
						if !l.BindToPort || l.Address.IP != "127.0.0.1" {
							t.Errorf("%s: %s at %+v bind %v, want bound on 127.0.0.1", mode, l.Name, l.Address, l.BindToPort)
						}
					} else if l.BindToPort {
						t.Errorf("%s: %s binds to its port", mode, l.Name)
					}
				}
				if mode == "NONE" && (ls.VirtualOutbound || ls.VirtualInbound) {
					t.Errorf("NONE: virtual listeners present")
				}
				if mode != "NONE" && !(ls.VirtualOutbound && ls.VirtualInbound) {
					t.Errorf("%s: virtual listeners missing", mode)
				}
			}
		})
	}
}

func TestListenersUnixBind(t *testing.T) {
	st := reviewsState(&networking.IstioEgressListener{
		Port:  &networking.SidecarPort{Number: 0, Protocol: "HTTP", Name: "http"},
		Bind:  "unix:///var/run/someuds.sock",
		Hosts: []string{"app/*"},
	})
	ls, err := ListenersFor(st, Proxy{Namespace: "app"})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, l := range ls.Listeners {
		if l.Address.Pipe != "" {
			found = true
			if l.Address.Pipe != "/var/run/someuds.sock" || !l.BindToPort {
				t.Errorf("unix listener %+v", l)
			}
		}
	}
	if !found {
		t.Errorf("no unix listener in %+v", ls.Listeners)
	}
}

func TestListenersReservedStatusPort(t *testing.T) {
	// An HTTP egress listener without a bind on the status port conflicts
	// with the proxy's own static listener only when the proxy reports
	// that port, as every pilot-agent does. (A listener with a port imports
	// only services with that port.)
	st := reviewsState(&networking.IstioEgressListener{
		Port:  &networking.SidecarPort{Number: DefaultEnvoyStatusPort, Protocol: "HTTP", Name: "http"},
		Hosts: []string{"app/*"},
	})
	st.Services = append(st.Services, Service{
		Namespace: "app", Name: "status", ClusterIP: "10.96.0.12",
		Ports: []ServicePort{{Name: "http", Port: DefaultEnvoyStatusPort, Protocol: "HTTP"}},
	})
	o, err := NewIstiod(st)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for _, tc := range []struct {
		status int
		want   int
	}{{0, 0}, {-1, 1}, {1234, 1}} {
		ls, err := o.ListenersFor(Proxy{Namespace: "app", EnvoyStatusPort: tc.status})
		if err != nil {
			t.Fatal(err)
		}
		if got := byPort(ls, DefaultEnvoyStatusPort); len(got) != tc.want {
			t.Errorf("EnvoyStatusPort %d: %d listeners on %d, want %d: %+v", tc.status, len(got), DefaultEnvoyStatusPort, tc.want, got)
		}
	}
}

func TestListenersReservedMeshPort(t *testing.T) {
	// A bound listener on the wildcard address takes the virtual outbound
	// listener's port only while the mesh config keeps it there.
	for _, tc := range []struct {
		meshPort int32
		want     int
	}{{0, 0}, {25001, 1}} {
		st := reviewsState(&networking.IstioEgressListener{
			Port:        &networking.SidecarPort{Number: 15001, Protocol: "TCP", Name: "tcp"},
			Bind:        "0.0.0.0",
			CaptureMode: networking.CaptureMode_NONE,
			Hosts:       []string{"app/*"},
		})
		st.Services = append(st.Services, Service{
			Namespace: "app", Name: "odd", ClusterIP: "10.96.0.13",
			Ports: []ServicePort{{Name: "tcp", Port: 15001, Protocol: "TCP"}},
		})
		st.ProxyListenPort = tc.meshPort
		ls, err := ListenersFor(st, Proxy{Namespace: "app"})
		if err != nil {
			t.Fatal(err)
		}
		if got := byPort(ls, 15001); len(got) != tc.want {
			t.Errorf("ProxyListenPort %d: %d listeners on 15001, want %d: %+v", tc.meshPort, len(got), tc.want, got)
		}
	}
}
