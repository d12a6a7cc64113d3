package validation

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateConnectionPool(t *testing.T) {
	type (
		httpSettings = networking.ConnectionPoolSettings_HTTPSettings
		tcpSettings  = networking.ConnectionPoolSettings_TCPSettings
	)
	d := durationpb.New
	httpPool := func(h *httpSettings) *networking.ConnectionPoolSettings {
		return &networking.ConnectionPoolSettings{Http: h}
	}
	tcpPool := func(tcp *tcpSettings) *networking.ConnectionPoolSettings {
		return &networking.ConnectionPoolSettings{Tcp: tcp}
	}
	cases := []struct {
		name string
		pool *networking.ConnectionPoolSettings
		want []errAtT
	}{
		{name: "absent"},
		{
			name: "neither http nor tcp",
			pool: &networking.ConnectionPoolSettings{},
			want: []errAtT{errAt(field.ErrorTypeRequired, "pool")},
		},
		{
			name: "valid http and tcp",
			pool: &networking.ConnectionPoolSettings{
				Http: &httpSettings{
					Http1MaxPendingRequests: 10, Http2MaxRequests: 100, MaxRequestsPerConnection: 1, MaxRetries: 3,
					MaxConcurrentStreams: 50, IdleTimeout: d(time.Minute),
					H2UpgradePolicy: networking.ConnectionPoolSettings_HTTPSettings_UPGRADE,
				},
				Tcp: &tcpSettings{
					MaxConnections: 100, ConnectTimeout: d(30 * time.Millisecond), MaxConnectionDuration: d(time.Hour),
					IdleTimeout: d(time.Hour),
					TcpKeepalive: &networking.ConnectionPoolSettings_TCPSettings_TcpKeepalive{
						Probes: 3, Time: d(7200 * time.Second), Interval: d(75 * time.Second),
					},
				},
			},
		},
		{
			name: "negative http limits",
			pool: httpPool(&httpSettings{
				Http1MaxPendingRequests: -1, Http2MaxRequests: -1, MaxRequestsPerConnection: -1, MaxRetries: -1, MaxConcurrentStreams: -1,
			}),
			want: []errAtT{
				errAt(field.ErrorTypeInvalid, "pool.http.http1MaxPendingRequests"),
				errAt(field.ErrorTypeInvalid, "pool.http.http2MaxRequests"),
				errAt(field.ErrorTypeInvalid, "pool.http.maxRequestsPerConnection"),
				errAt(field.ErrorTypeInvalid, "pool.http.maxRetries"),
				errAt(field.ErrorTypeInvalid, "pool.http.maxConcurrentStreams"),
			},
		},
		{
			name: "http idle timeout below 1ms",
			pool: httpPool(&httpSettings{IdleTimeout: d(500 * time.Microsecond)}),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "pool.http.idleTimeout")},
		},
		{
			name: "http idle timeout of 0s",
			pool: httpPool(&httpSettings{IdleTimeout: d(0)}),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "pool.http.idleTimeout")},
		},
		{
			name: "http idle timeout with sub-millisecond precision",
			pool: httpPool(&httpSettings{IdleTimeout: d(1500 * time.Microsecond)}),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "pool.http.idleTimeout")},
		},
		{
			name: "malformed duration",
			pool: httpPool(&httpSettings{IdleTimeout: &durationpb.Duration{Seconds: 1, Nanos: -1}}),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "pool.http.idleTimeout")},
		},
		{
			name: "UPGRADE with useClientProtocol",
			pool: httpPool(&httpSettings{H2UpgradePolicy: networking.ConnectionPoolSettings_HTTPSettings_UPGRADE, UseClientProtocol: true}),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "pool.http.useClientProtocol")},
		},
		{
			name: "DO_NOT_UPGRADE with useClientProtocol",
			pool: httpPool(&httpSettings{H2UpgradePolicy: networking.ConnectionPoolSettings_HTTPSettings_DO_NOT_UPGRADE, UseClientProtocol: true}),
		},
		{
			name: "h2UpgradePolicy number without a name",
			pool: httpPool(&httpSettings{H2UpgradePolicy: 7}),
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "pool.http.h2UpgradePolicy")},
		},
		{
			name: "negative maxConnections",
			pool: tcpPool(&tcpSettings{MaxConnections: -5}),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "pool.tcp.maxConnections")},
		},
		{
			name: "tcp durations below 1ms",
			pool: tcpPool(&tcpSettings{
				ConnectTimeout: d(0), MaxConnectionDuration: d(-time.Second), IdleTimeout: d(-time.Millisecond),
				TcpKeepalive: &networking.ConnectionPoolSettings_TCPSettings_TcpKeepalive{Time: d(0), Interval: d(time.Nanosecond)},
			}),
			want: []errAtT{
				errAt(field.ErrorTypeInvalid, "pool.tcp.connectTimeout"),
				errAt(field.ErrorTypeInvalid, "pool.tcp.maxConnectionDuration"),
				errAt(field.ErrorTypeInvalid, "pool.tcp.idleTimeout"),
				errAt(field.ErrorTypeInvalid, "pool.tcp.tcpKeepalive.time"),
				errAt(field.ErrorTypeInvalid, "pool.tcp.tcpKeepalive.interval"),
			},
		},
		{
			name: "tcp idle timeout of exactly 0s disables it",
			pool: tcpPool(&tcpSettings{IdleTimeout: d(0)}),
		},
		{
			// Istio skips the check when the value is 0 in whole milliseconds.
			name: "tcp idleTimeout below 1ms in either direction counts as 0",
			pool: tcpPool(&tcpSettings{IdleTimeout: d(500 * time.Microsecond)}),
		},
		{
			name: "HTTP/2 keepalive needs interval and timeout, each at least 1ms in whole milliseconds",
			pool: httpPool(&httpSettings{Http2KeepAlive: &networking.ConnectionPoolSettings_HTTPSettings_ConnectionKeepalive{Interval: d(time.Second + time.Nanosecond)}}),
			want: []errAtT{
				errAt(field.ErrorTypeInvalid, "pool.http.http2KeepAlive.interval"),
				errAt(field.ErrorTypeRequired, "pool.http.http2KeepAlive.timeout"),
			},
		},
		{
			name: "HTTP/2 keepalive, valid",
			pool: httpPool(&httpSettings{Http2KeepAlive: &networking.ConnectionPoolSettings_HTTPSettings_ConnectionKeepalive{Interval: d(30 * time.Second), Timeout: d(10 * time.Second)}}),
		},
		{
			name: "tcp keepalive without durations",
			pool: tcpPool(&tcpSettings{TcpKeepalive: &networking.ConnectionPoolSettings_TCPSettings_TcpKeepalive{Probes: 5}}),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkObjectErrors(t, validateConnectionPool(tc.pool, field.NewPath("pool")), tc.want)
		})
	}
}

func TestInboundConnectionPoolPath(t *testing.T) {
	errs, _ := ValidateSidecar(objectSidecar(&networking.Sidecar{InboundConnectionPool: &networking.ConnectionPoolSettings{
		Http: &networking.ConnectionPoolSettings_HTTPSettings{Http1MaxPendingRequests: -1},
	}}))
	checkObjectErrors(t, errs, []errAtT{errAt(field.ErrorTypeInvalid, "spec.inboundConnectionPool.http.http1MaxPendingRequests")})
}
