// Package server assembles the running webhook: a controller-runtime manager
// with the HTTPS webhook server, metrics, health probes and (for the
// cluster-state rules) informer caches. Both `serve` (in a cluster) and `dev`
// (local control plane) run exactly this.
package server

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// Config is everything the server needs, parsed and checked by the caller.
type Config struct {
	CertDir     string
	Host        string
	Port        int
	MetricsAddr string // "0" disables
	HealthAddr  string // "0" disables

	Validation validation.Options
}

// Validate reports configuration mistakes before anything starts.
func (c Config) Validate() error {
	if c.CertDir == "" {
		return fmt.Errorf("--cert-dir is required")
	}
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("--port must be between 1 and 65535, got %d", c.Port)
	}
	switch c.Validation.Enforcement {
	case validation.EnforcementDeny, validation.EnforcementWarn:
	default:
		return fmt.Errorf("--enforcement must be deny or warn, got %q", c.Validation.Enforcement)
	}
	return nil
}

// TLSOptions are applied to the serving TLS config: TLS 1.2 at least and,
// for 1.2, only forward-secret AEAD suites (1.3 suites are not configurable).
func TLSOptions(cfg *tls.Config) {
	cfg.MinVersion = tls.VersionTLS12
	cfg.CipherSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, restConfig *rest.Config, log logr.Logger, reg prometheus.Registerer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: orDisabled(cfg.MetricsAddr)},
		HealthProbeBindAddress: orDisabled(cfg.HealthAddr),
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host:    cfg.Host,
			Port:    cfg.Port,
			CertDir: cfg.CertDir,
			TLSOpts: []func(*tls.Config){TLSOptions},
		}),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	// The manager only runs a webhook server it has handed out: take it
	// from the manager rather than keeping the one passed in.
	webhookServer := mgr.GetWebhookServer()
	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	webhook.Register(webhookServer, webhook.Handlers{
		webhook.ValidateSidecarsPath: &webhook.SidecarValidator{Options: cfg.Validation},
		webhook.MutateSidecarsPath:   &webhook.SidecarDefaulter{},
	}, metrics, log.WithName("admission"))

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", webhookServer.StartedChecker()); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

func orDisabled(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}

var _ admission.Handler = &webhook.SidecarValidator{}
