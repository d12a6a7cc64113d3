package load

import (
	"context"
	"crypto/tls"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// ServeAdmission serves h at path the way `sidecar-webhook serve` serves
// its handlers: controller-runtime's webhook server with the production TLS
// options, HTTP/2, the review decoded by admission.Webhook,
// webhook.Register's metrics and one JSON log line per request (serve's
// default logger). The reference servers (the floor, the relay) use it, so
// that they differ from a replica only in their handler. It returns when
// ctx ends or the server fails.
func ServeAdmission(ctx context.Context, certDir string, port int, path string, h admission.Handler) error {
	log := crzap.New(crzap.WriteTo(os.Stderr))
	srv := crwebhook.NewServer(crwebhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: certDir,
		TLSOpts: []func(*tls.Config){server.TLSOptions},
	})
	metrics, err := webhook.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return err
	}
	webhook.Register(srv, webhook.Handlers{path: h}, metrics, log.WithName("admission"))
	return srv.Start(ctx)
}
