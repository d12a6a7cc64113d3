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
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/hack/loadbench/load"
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
	if err := load.ServeAdmission(ctx, *certDir, *port, FloorPath, floor{}); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
