// Command floor is the load benchmark's reference server: the project's
// admission path with nothing behind it. It serves FloorPath exactly as
// `sidecar-webhook serve` serves its handlers (controller-runtime's webhook
// server with the production TLS options, HTTP/2, the review decoded by
// admission.Webhook, webhook.Register's metrics and one JSON log line per
// request) with a handler that answers "allowed" without looking at the
// object. The real handlers' figures read as ratios to it: what every
// request costs before any rule runs.
//
//	floor --cert-dir DIR --port PORT
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// FloorPath is where the floor answers.
const FloorPath = "/floor"

type floor struct{}

func (floor) Handle(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}

func main() {
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	port := flag.Int("port", 9443, "HTTPS port")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// serve's default logger: JSON at info level.
	log := crzap.New(crzap.WriteTo(os.Stderr))
	srv := crwebhook.NewServer(crwebhook.Options{
		Host: "127.0.0.1", Port: *port, CertDir: *certDir,
		TLSOpts: []func(*tls.Config){server.TLSOptions},
	})
	metrics, err := webhook.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	webhook.Register(srv, webhook.Handlers{FloorPath: floor{}}, metrics, log.WithName("admission"))
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
