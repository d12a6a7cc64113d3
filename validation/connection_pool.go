package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateConnectionPool checks spec.inboundConnectionPool or
// spec.ingress[i].connectionPool. The settings are Istio's DestinationRule
// connection pool settings, applied to inbound traffic.
func validateConnectionPool(pool *networking.ConnectionPoolSettings, path *field.Path) field.ErrorList {
	if pool == nil {
		return nil
	}
	if pool.Http == nil && pool.Tcp == nil {
		return field.ErrorList{rules.ConnectionPoolEmpty.On(field.Required(path, "connection pool must set at least one of http, tcp; remove it to use the defaults"))}
	}
	var errs field.ErrorList
	if h := pool.Http; h != nil {
		hp := path.Child("http")
		errs = append(errs, nonNegative(h.GetHttp1MaxPendingRequests(), hp.Child("http1MaxPendingRequests"))...)
		errs = append(errs, nonNegative(h.GetHttp2MaxRequests(), hp.Child("http2MaxRequests"))...)
		errs = append(errs, nonNegative(h.GetMaxRequestsPerConnection(), hp.Child("maxRequestsPerConnection"))...)
		errs = append(errs, nonNegative(h.GetMaxRetries(), hp.Child("maxRetries"))...)
		errs = append(errs, nonNegative(h.GetMaxConcurrentStreams(), hp.Child("maxConcurrentStreams"))...)
		if h.IdleTimeout != nil {
			errs = append(errs, validateTimeout(h.IdleTimeout, hp.Child("idleTimeout"))...)
		}
		errs = append(errs, validateEnum(int32(h.GetH2UpgradePolicy()),
			networking.ConnectionPoolSettings_HTTPSettings_H2UpgradePolicy_name, hp.Child("h2UpgradePolicy"))...)
		if h.GetH2UpgradePolicy() == networking.ConnectionPoolSettings_HTTPSettings_UPGRADE && h.GetUseClientProtocol() {
			errs = append(errs, rules.ConnectionPoolProtocol.On(field.Forbidden(hp.Child("useClientProtocol"),
				"useClientProtocol must not be true when h2UpgradePolicy is UPGRADE; the two settings contradict each other")))
		}
		if ka := h.GetHttp2KeepAlive(); ka != nil {
			kp := hp.Child("http2KeepAlive")
			for _, d := range []struct {
				name  string
				value *durationpb.Duration
			}{{"interval", ka.GetInterval()}, {"timeout", ka.GetTimeout()}} {
				if d.value == nil {
					errs = append(errs, rules.ConnectionPoolValue.On(field.Required(kp.Child(d.name), "an HTTP/2 keepalive needs both interval and timeout, for example interval: 30s and timeout: 10s")))
					continue
				}
				errs = append(errs, validateTimeout(d.value, kp.Child(d.name))...)
			}
		}
	}
	if t := pool.Tcp; t != nil {
		tp := path.Child("tcp")
		errs = append(errs, nonNegative(t.GetMaxConnections(), tp.Child("maxConnections"))...)
		if t.ConnectTimeout != nil {
			errs = append(errs, validateTimeout(t.ConnectTimeout, tp.Child("connectTimeout"))...)
		}
		if t.MaxConnectionDuration != nil {
			errs = append(errs, validateTimeout(t.MaxConnectionDuration, tp.Child("maxConnectionDuration"))...)
		}
		// An idle timeout of 0s disables it; Istio skips the check for
		// anything that is 0 in whole milliseconds.
		if t.IdleTimeout != nil && t.IdleTimeout.AsDuration().Milliseconds() != 0 {
			errs = append(errs, validateTimeout(t.IdleTimeout, tp.Child("idleTimeout"))...)
		}
		if ka := t.TcpKeepalive; ka != nil {
			kp := tp.Child("tcpKeepalive")
			if ka.Time != nil {
				errs = append(errs, validateTimeout(ka.Time, kp.Child("time"))...)
			}
			if ka.Interval != nil {
				errs = append(errs, validateTimeout(ka.Interval, kp.Child("interval"))...)
			}
		}
	}
	return errs
}

func nonNegative(v int32, path *field.Path) field.ErrorList {
	if v < 0 {
		return field.ErrorList{rules.ConnectionPoolValue.On(field.Invalid(path, v, "must not be negative (0 means the default)"))}
	}
	return nil
}

// validateTimeout checks a duration the way Istio does: at least 1ms and a
// whole number of milliseconds.
func validateTimeout(d *durationpb.Duration, path *field.Path) field.ErrorList {
	if err := d.CheckValid(); err != nil {
		return field.ErrorList{rules.ConnectionPoolValue.On(field.Invalid(path, d.String(), fmt.Sprintf("not a valid duration (%v); write it like 100ms, 5s or 1m", err)))}
	}
	dur := d.AsDuration()
	if dur < time.Millisecond {
		return field.ErrorList{rules.ConnectionPoolValue.On(field.Invalid(path, dur.String(), "must be at least 1ms"))}
	}
	if dur%time.Millisecond != 0 {
		return field.ErrorList{rules.ConnectionPoolValue.On(field.Invalid(path, dur.String(), "must be a whole number of milliseconds"))}
	}
	return nil
}
