package diff

import (
	"fmt"
	"math/rand"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
)

// Generated Sidecars for the validation comparison: a valid base (valid for
// Istio and for the project), then zero to three mutations drawn from the
// value lists below, which mix valid values with the edges of each rule.

var (
	validHosts = []string{
		"*/*", "./*", "istio-system/*", "prod/reviews.prod.svc.cluster.local", "*/api.example.com",
		"~prod/*", "./*.example.com", "~*/foo.example.com", "prod/*.prod.svc.cluster.local",
	}
	mutantHosts = []string{
		// short names, exclusions, wildcards
		"prod/reviews", "*/reviews", "~prod/reviews", "~/*", "~./*", "~*/*", "~", "~~prod/*", "~/reviews.prod.svc.cluster.local",
		"*/*.example.com", "*/foo.*.com", "*/*foo.example.com", "*/foo*.example.com", "*/**", "**/*", "*/*.*.example.com",
		// case, trailing dots, numeric labels
		"PROD/Reviews.Prod.SVC.Cluster.Local", "Prod/*", "~UPPER/*", "prod/reviews.prod.svc.cluster.local.", "*/*.com.",
		"*/foo.123", "*/1.2.3.4", "*/foo.0x10", "*/123.example.com", "*/foo.example.c0m", "*/foo.", "*/*.", "*/.", "*/..",
		"*/foo..example.com", "*/.foo.example.com",
		// shape
		"*", "prod/", "/foo.example.com", "", "prod/*/x", "prod/foo.example.com/x", "prod_x/foo.example.com",
		"prod/foo_bar.example.com", "prod/-foo.example.com", "prod/foo-.example.com", "-prod/*", "prod-/*", "a.b/*",
		"*/[::1]", "*/foo.example.com:80", "*/xn--bcher-kva.example", "./foo.example.com",
		"prod/" + strings.Repeat("a", 63) + ".com", "prod/" + strings.Repeat("a", 64) + ".com",
		"prod/" + strings.Repeat("abcdefgh.", 28) + "com", strings.Repeat("n", 63) + "/*", strings.Repeat("n", 64) + "/*",
	}
	binds = []string{
		"", "127.0.0.1", "::1", "0.0.0.0", "::", "10.0.0.1", "2001:db8::1", "2001:DB8::1", "0:0:0:0:0:0:0:1",
		"::ffff:127.0.0.1", "::FFFF:1.2.3.4", "127.000.000.001", "127.0.0.01", "fe80::1%eth0", "localhost", "1.2.3",
		"unix:///var/run/x.sock", "unix://@abs", "unix://relative.sock", "unix:///dir/", "unix://", "unix://@",
		"UNIX:///x.sock", "unix:///",
	}
	ports           = []uint32{0, 1, 80, 443, 1023, 8080, 9080, 15001, 15006, 15021, 15090, 65535, 65536, 4294967295}
	protocols       = []string{"", "HTTP", "http", "Http", "TCP", "GRPC", "grpc-web", "GRPC_WEB", "HTTP2", "HTTP_PROXY", "HTTPS", "TLS", "UDP", "MONGO", "mysql", "REDIS", "THRIFT", "DoubleHBONE", "HBONE", "tcp "}
	portNames       = []string{"", "http", "HTTP", "Http-1", "http-1", "-x", "x-", "a_b", "a.b", strings.Repeat("a", 63), strings.Repeat("a", 64), "1abc", "123", "a b"}
	endpoints       = []string{"", "127.0.0.1:8080", ":8080", "[::1]:8080", "0.0.0.0:80", "[::]:80", "127.0.0.1:0", "127.0.0.1:65535", "127.0.0.1:65536", "127.0.0.1:+80", "127.0.0.1:080", "10.0.0.1:80", "localhost:80", "unix:///sock", "unix://@x", "unix://rel", "unix:///dir/", "unix://", "unix://@", "127.0.0.1", "::1:80", "[::1]", "127.0.0.1:http", "0.0.0.0:-1", "[0:0:0:0:0:0:0:1]:80", "[::ffff:127.0.0.1]:80", "127.0.0.1:8080:9", "[fe80::1%eth0]:80", ":0", ":65536"}
	selectors       = []map[string]string{{}, {"app": "a"}, {"*": "a"}, {"app": "*"}, {"": "a"}, {"app": ""}, {"a b": "c"}, {"x/y/z": "a"}, {"example.com/app": "a"}, {"App": "A"}, {"app": "a b"}, {"app": "-a"}, {"app": strings.Repeat("v", 63)}, {"app": strings.Repeat("v", 64)}, {"k": "v", "k2": "*x"}, {strings.Repeat("k", 64): "v"}, {"EXAMPLE.com/app": "x"}, {"example..com/app": "x"}, {"kubernetes.io/hostname": "node1"}, {"app": "a.b_c-d"}, {"app": "a/b"}, {"/app": "a"}, {"app/": "a"}}
	durations       = []*durationpb.Duration{{}, {Nanos: 500_000}, {Nanos: -500_000}, {Nanos: 1_000_000}, {Nanos: 1_500_000}, {Seconds: -1}, {Seconds: 1}, {Seconds: 360000}, {Nanos: 999_999_999}, {Seconds: 1, Nanos: 1}}
	cipherSets      = [][]string{nil, {"ECDHE-RSA-AES128-GCM-SHA256"}, {"NOT-A-CIPHER"}, {"AES128-SHA", "AES128-SHA"}}
	egressHostNames = []string{"egress.infra.svc.cluster.local", "", "egress", "*.example.com", "*", "1.2.3.4", "EGRESS.Example.com", "egress.example.com.", "egress_proxy.example.com", "egress.123"}
	subsets         = []string{"", "v1", "V1", "v_1", "-v1", strings.Repeat("s", 64)}
)

func genPort(r *rand.Rand, number uint32) *networking.SidecarPort {
	return &networking.SidecarPort{Number: number, Protocol: pick(r, "HTTP", "TCP", "GRPC", "HTTPS", ""), Name: pick(r, "", "http", "tcp-1")}
}

// genBaseSidecar returns a Sidecar both Istio and the project accept.
func genBaseSidecar(r *rand.Rand) *networking.Sidecar {
	s := &networking.Sidecar{}
	if chance(r, 0.4) {
		s.WorkloadSelector = &networking.WorkloadSelector{Labels: map[string]string{"app": pick(r, "reviews", "ratings")}}
	}
	ingressPorts := []uint32{8080, 9080, 8443, 5000}
	r.Shuffle(len(ingressPorts), func(i, j int) { ingressPorts[i], ingressPorts[j] = ingressPorts[j], ingressPorts[i] })
	for i, n := 0, r.Intn(3); i < n; i++ {
		l := &networking.IstioIngressListener{
			Port:            genPort(r, ingressPorts[i]),
			DefaultEndpoint: pick(r, "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:8080", "[::]:80", "unix:///var/run/app.sock", "unix://@app"),
			Bind:            pick(r, "", "", "0.0.0.0", "10.0.0.1", "::"),
			CaptureMode:     pick(r, networking.CaptureMode_DEFAULT, networking.CaptureMode_NONE, networking.CaptureMode_IPTABLES),
		}
		if l.Port.Protocol == "HTTPS" && chance(r, 0.5) {
			l.Tls = &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, ServerCertificate: "/etc/certs/cert.pem", PrivateKey: "/etc/certs/key.pem"}
		}
		if chance(r, 0.2) {
			l.ConnectionPool = &networking.ConnectionPoolSettings{Tcp: &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 100}}
		}
		s.Ingress = append(s.Ingress, l)
	}
	egressPorts := []uint32{9080, 5432, 443, 80, 15010}
	r.Shuffle(len(egressPorts), func(i, j int) { egressPorts[i], egressPorts[j] = egressPorts[j], egressPorts[i] })
	for i, n := 0, r.Intn(3); i < n; i++ {
		l := &networking.IstioEgressListener{Hosts: genHosts(r)}
		switch x := r.Float64(); {
		case x < 0.15:
			l.Port = &networking.SidecarPort{Number: 0, Protocol: pick(r, "HTTP", "TCP"), Name: "uds"}
			l.Bind = fmt.Sprintf("unix:///var/run/s%d.sock", i)
			l.CaptureMode = pick(r, networking.CaptureMode_DEFAULT, networking.CaptureMode_NONE)
		default:
			l.Port = genPort(r, egressPorts[i])
			l.CaptureMode = pick(r, networking.CaptureMode_DEFAULT, networking.CaptureMode_NONE, networking.CaptureMode_IPTABLES)
			if l.CaptureMode == networking.CaptureMode_NONE && chance(r, 0.5) {
				l.Bind = pick(r, "127.0.0.1", "::1")
			}
		}
		s.Egress = append(s.Egress, l)
	}
	if len(s.Egress) == 0 || chance(r, 0.5) {
		s.Egress = append(s.Egress, &networking.IstioEgressListener{Hosts: genHosts(r)})
	}
	if chance(r, 0.2) {
		s.OutboundTrafficPolicy = &networking.OutboundTrafficPolicy{Mode: networking.OutboundTrafficPolicy_REGISTRY_ONLY}
		if chance(r, 0.5) {
			s.OutboundTrafficPolicy = &networking.OutboundTrafficPolicy{
				Mode:        networking.OutboundTrafficPolicy_ALLOW_ANY,
				EgressProxy: &networking.Destination{Host: "egress.infra.svc.cluster.local", Port: &networking.PortSelector{Number: 443}},
			}
		}
	}
	if chance(r, 0.2) {
		s.InboundConnectionPool = &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{Http1MaxPendingRequests: 10}}
	}
	return s
}

func genHosts(r *rand.Rand) []string {
	hosts := []string{pick(r, validHosts...)}
	if chance(r, 0.3) {
		h := pick(r, validHosts...)
		if h != hosts[0] {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// mutation changes a Sidecar in place and says what it did.
type mutation func(r *rand.Rand, s *networking.Sidecar) string

func anyEgress(r *rand.Rand, s *networking.Sidecar) *networking.IstioEgressListener {
	var ls []*networking.IstioEgressListener
	for _, l := range s.Egress {
		if l != nil {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		l := &networking.IstioEgressListener{Hosts: []string{"*/*"}}
		s.Egress = append(s.Egress, l)
		return l
	}
	return ls[r.Intn(len(ls))]
}

func anyIngress(r *rand.Rand, s *networking.Sidecar) *networking.IstioIngressListener {
	var ls []*networking.IstioIngressListener
	for _, l := range s.Ingress {
		if l != nil {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		l := &networking.IstioIngressListener{Port: &networking.SidecarPort{Number: 8080, Protocol: "HTTP", Name: "http"}, DefaultEndpoint: "127.0.0.1:8080"}
		s.Ingress = append(s.Ingress, l)
		return l
	}
	return ls[r.Intn(len(ls))]
}

func anyPool(r *rand.Rand, s *networking.Sidecar) *networking.ConnectionPoolSettings {
	if chance(r, 0.5) {
		if s.InboundConnectionPool == nil {
			s.InboundConnectionPool = &networking.ConnectionPoolSettings{}
		}
		return s.InboundConnectionPool
	}
	l := anyIngress(r, s)
	if l.ConnectionPool == nil {
		l.ConnectionPool = &networking.ConnectionPoolSettings{}
	}
	return l.ConnectionPool
}

func anyTLS(r *rand.Rand, s *networking.Sidecar) *networking.ServerTLSSettings {
	l := anyIngress(r, s)
	if l.Tls == nil {
		l.Tls = &networking.ServerTLSSettings{}
		if l.Port != nil && chance(r, 0.7) {
			l.Port.Protocol = pick(r, "HTTPS", "TLS", "https")
		}
	}
	return l.Tls
}

func fmtDuration(d *durationpb.Duration) string {
	return fmt.Sprintf("%ds%dns", d.GetSeconds(), d.GetNanos())
}

var mutations = []mutation{
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyEgress(r, s)
		h := pick(r, mutantHosts...)
		if len(l.Hosts) > 0 && chance(r, 0.5) {
			l.Hosts[r.Intn(len(l.Hosts))] = h
			return "egress host replaced by " + h
		}
		l.Hosts = append(l.Hosts, h)
		return "egress host added " + h
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyEgress(r, s)
		h := pick(r, validHosts...)
		l.Hosts = append(l.Hosts, h)
		return "egress host added (maybe duplicate) " + h
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyEgress(r, s)
		if l.Port == nil {
			l.Port = &networking.SidecarPort{Protocol: "TCP"}
		}
		l.Port.Number = pick(r, ports...)
		return fmt.Sprintf("egress port number %d", l.Port.Number)
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyEgress(r, s)
		l.Bind = pick(r, binds...)
		return "egress bind " + l.Bind
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyEgress(r, s)
		l.CaptureMode = pick(r, networking.CaptureMode_DEFAULT, networking.CaptureMode_NONE, networking.CaptureMode_IPTABLES, networking.CaptureMode(7))
		return "egress captureMode " + l.CaptureMode.String()
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyEgress(r, s)
		if l.Port == nil {
			return "egress protocol (no port)"
		}
		l.Port.Protocol = pick(r, protocols...)
		return "egress protocol " + l.Port.Protocol
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		if chance(r, 0.5) {
			l := anyEgress(r, s)
			if l.Port == nil {
				return "egress port name (no port)"
			}
			l.Port.Name = pick(r, portNames...)
			return "egress port name " + l.Port.Name
		}
		l := anyIngress(r, s)
		if l.Port == nil {
			return "ingress port name (no port)"
		}
		l.Port.Name = pick(r, portNames...)
		return "ingress port name " + l.Port.Name
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyIngress(r, s)
		l.DefaultEndpoint = pick(r, endpoints...)
		return "ingress defaultEndpoint " + l.DefaultEndpoint
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyIngress(r, s)
		l.Bind = pick(r, binds...)
		return "ingress bind " + l.Bind
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyIngress(r, s)
		switch x := r.Float64(); {
		case x < 0.15:
			l.Port = nil
			return "ingress port removed"
		case l.Port == nil:
			l.Port = &networking.SidecarPort{Protocol: "HTTP"}
		}
		l.Port.Number = pick(r, ports...)
		if chance(r, 0.3) {
			l.Port.Protocol = pick(r, protocols...)
		}
		return fmt.Sprintf("ingress port %d %s", l.Port.Number, l.Port.Protocol)
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		l := anyIngress(r, s)
		l.CaptureMode = pick(r, networking.CaptureMode_DEFAULT, networking.CaptureMode_NONE, networking.CaptureMode_IPTABLES, networking.CaptureMode(9))
		return "ingress captureMode " + l.CaptureMode.String()
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		tls := anyTLS(r, s)
		tls.Mode = pick(r, networking.ServerTLSSettings_PASSTHROUGH, networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL,
			networking.ServerTLSSettings_AUTO_PASSTHROUGH, networking.ServerTLSSettings_ISTIO_MUTUAL, networking.ServerTLSSettings_OPTIONAL_MUTUAL, networking.ServerTLSSettings_TLSmode(11))
		return "tls mode " + tls.Mode.String()
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		tls := anyTLS(r, s)
		switch r.Intn(12) {
		case 0:
			tls.ServerCertificate = pick(r, "", "/etc/certs/cert.pem")
			return "tls serverCertificate " + tls.ServerCertificate
		case 1:
			tls.PrivateKey = pick(r, "", "/etc/certs/key.pem")
			return "tls privateKey " + tls.PrivateKey
		case 2:
			tls.CaCertificates = pick(r, "", "/etc/certs/ca.pem")
			return "tls caCertificates " + tls.CaCertificates
		case 3:
			tls.CaCrl = "/etc/certs/crl.pem"
			return "tls caCrl"
		case 4:
			tls.CredentialName = "cred"
			return "tls credentialName"
		case 5:
			tls.CredentialNames = []string{"a"}
			return "tls credentialNames"
		case 6:
			tls.SubjectAltNames = []string{"spiffe://x"}
			return "tls subjectAltNames"
		case 7:
			tls.HttpsRedirect = true
			return "tls httpsRedirect"
		case 8:
			tls.TlsCertificates = []*networking.ServerTLSSettings_TLSCertificate{{ServerCertificate: "/a", PrivateKey: "/b"}}
			return "tls tlsCertificates"
		case 9:
			tls.MinProtocolVersion = pick(r, networking.ServerTLSSettings_TLSV1_0, networking.ServerTLSSettings_TLSV1_1, networking.ServerTLSSettings_TLSV1_3, networking.ServerTLSSettings_TLSProtocol(8))
			return "tls minProtocolVersion " + tls.MinProtocolVersion.String()
		case 10:
			tls.MaxProtocolVersion = pick(r, networking.ServerTLSSettings_TLSV1_2, networking.ServerTLSSettings_TLSProtocol(8))
			return "tls maxProtocolVersion " + tls.MaxProtocolVersion.String()
		}
		tls.CipherSuites = pick(r, cipherSets...)
		return fmt.Sprintf("tls cipherSuites %v", tls.CipherSuites)
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		pool := anyPool(r, s)
		if pool.Http == nil {
			pool.Http = &networking.ConnectionPoolSettings_HTTPSettings{}
		}
		h := pool.Http
		switch r.Intn(8) {
		case 0:
			h.Http1MaxPendingRequests = pick[int32](r, -1, 0, 5)
			return fmt.Sprintf("http1MaxPendingRequests %d", h.Http1MaxPendingRequests)
		case 1:
			h.MaxRetries = pick[int32](r, -1, 3)
			return fmt.Sprintf("maxRetries %d", h.MaxRetries)
		case 2:
			h.MaxConcurrentStreams = pick[int32](r, -1, 3)
			return fmt.Sprintf("maxConcurrentStreams %d", h.MaxConcurrentStreams)
		case 3:
			h.IdleTimeout = pick(r, durations...)
			return "http idleTimeout " + fmtDuration(h.IdleTimeout)
		case 4:
			h.H2UpgradePolicy = pick(r, networking.ConnectionPoolSettings_HTTPSettings_DEFAULT, networking.ConnectionPoolSettings_HTTPSettings_UPGRADE,
				networking.ConnectionPoolSettings_HTTPSettings_DO_NOT_UPGRADE, networking.ConnectionPoolSettings_HTTPSettings_H2UpgradePolicy(5))
			return "h2UpgradePolicy " + h.H2UpgradePolicy.String()
		case 5:
			h.UseClientProtocol = true
			if chance(r, 0.5) {
				h.H2UpgradePolicy = networking.ConnectionPoolSettings_HTTPSettings_UPGRADE
			}
			return "useClientProtocol with " + h.H2UpgradePolicy.String()
		case 6:
			ka := &networking.ConnectionPoolSettings_HTTPSettings_ConnectionKeepalive{}
			if chance(r, 0.6) {
				ka.Interval = pick(r, durations...)
			}
			if chance(r, 0.6) {
				ka.Timeout = pick(r, durations...)
			}
			h.Http2KeepAlive = ka
			return fmt.Sprintf("http2KeepAlive interval %v timeout %v", ka.Interval != nil, ka.Timeout != nil)
		}
		h.Http2MaxRequests = pick[int32](r, -1, 100)
		return fmt.Sprintf("http2MaxRequests %d", h.Http2MaxRequests)
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		pool := anyPool(r, s)
		if chance(r, 0.1) {
			pool.Tcp, pool.Http = nil, nil
			return "connection pool emptied"
		}
		if pool.Tcp == nil {
			pool.Tcp = &networking.ConnectionPoolSettings_TCPSettings{}
		}
		t := pool.Tcp
		switch r.Intn(6) {
		case 0:
			t.MaxConnections = pick[int32](r, -1, 0, 10)
			return fmt.Sprintf("maxConnections %d", t.MaxConnections)
		case 1:
			t.ConnectTimeout = pick(r, durations...)
			return "connectTimeout " + fmtDuration(t.ConnectTimeout)
		case 2:
			t.MaxConnectionDuration = pick(r, durations...)
			return "maxConnectionDuration " + fmtDuration(t.MaxConnectionDuration)
		case 3:
			t.IdleTimeout = pick(r, durations...)
			return "tcp idleTimeout " + fmtDuration(t.IdleTimeout)
		case 4:
			t.TcpKeepalive = &networking.ConnectionPoolSettings_TCPSettings_TcpKeepalive{Time: pick(r, durations...), Interval: pick(r, durations...)}
			return "tcpKeepalive " + fmtDuration(t.TcpKeepalive.Time) + " " + fmtDuration(t.TcpKeepalive.Interval)
		}
		t.TcpKeepalive = &networking.ConnectionPoolSettings_TCPSettings_TcpKeepalive{Probes: 3}
		return "tcpKeepalive probes only"
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		sel := pick(r, selectors...)
		c := map[string]string{}
		for k, v := range sel {
			c[k] = v
		}
		s.WorkloadSelector = &networking.WorkloadSelector{Labels: c}
		if len(c) == 0 && chance(r, 0.5) {
			s.WorkloadSelector.Labels = nil
		}
		return "workloadSelector " + formatLabels(c)
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		p := &networking.OutboundTrafficPolicy{Mode: pick(r, networking.OutboundTrafficPolicy_REGISTRY_ONLY, networking.OutboundTrafficPolicy_ALLOW_ANY, networking.OutboundTrafficPolicy_Mode(2), networking.OutboundTrafficPolicy_Mode(3))}
		if chance(r, 0.7) {
			d := &networking.Destination{Host: pick(r, egressHostNames...), Subset: pick(r, subsets...)}
			if chance(r, 0.8) {
				d.Port = &networking.PortSelector{Number: pick[uint32](r, 0, 443, 65535, 65536)}
			}
			p.EgressProxy = d
		}
		s.OutboundTrafficPolicy = p
		return fmt.Sprintf("outboundTrafficPolicy %v", p)
	},
	func(r *rand.Rand, s *networking.Sidecar) string {
		switch r.Intn(8) {
		case 0:
			l := anyEgress(r, s)
			l.Hosts = nil
			return "egress hosts removed"
		case 1:
			l := anyEgress(r, s)
			l.Port = nil
			return "egress port removed (a port-less listener, maybe not last)"
		case 2:
			s.Egress = append(s.Egress, &networking.IstioEgressListener{Hosts: []string{"*/*"}})
			return "port-less egress listener appended"
		case 3:
			if chance(r, 0.5) {
				s.Egress = append(s.Egress, nil)
				return "null egress entry"
			}
			s.Ingress = append(s.Ingress, nil)
			return "null ingress entry"
		case 4:
			s.Egress, s.Ingress = nil, nil
			return "listeners removed"
		case 5:
			l := anyEgress(r, s)
			if l.Port == nil {
				l.Port = &networking.SidecarPort{Number: 9090}
			}
			l.Port.TargetPort = 8080 //nolint:staticcheck // deprecated field, set on purpose
			return "egress targetPort"
		case 6:
			l := anyIngress(r, s)
			if l.Port == nil {
				l.Port = &networking.SidecarPort{Number: 9090}
			}
			l.Port.TargetPort = 8080 //nolint:staticcheck // deprecated field, set on purpose
			return "ingress targetPort"
		}
		// A second egress listener on a port or socket already used.
		l := anyEgress(r, s)
		dup := &networking.IstioEgressListener{Hosts: []string{"*/*"}, Bind: l.Bind}
		if l.Port != nil {
			dup.Port = &networking.SidecarPort{Number: l.Port.Number, Protocol: "TCP"}
		}
		s.Egress = append([]*networking.IstioEgressListener{dup}, s.Egress...)
		return "egress listener duplicated"
	},
}

// genMutatedSidecar returns a valid base with zero to three mutations and
// the list of mutations applied.
func genMutatedSidecar(r *rand.Rand) (*networking.Sidecar, []string) {
	s := genBaseSidecar(r)
	var applied []string
	for i, n := 0, r.Intn(4); i < n; i++ {
		applied = append(applied, mutations[r.Intn(len(mutations))](r, s))
	}
	return s, applied
}
