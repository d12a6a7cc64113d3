// Command istio-validation serves Istio's own validation webhook
// (istio.io/istio/pkg/webhooks/validation/server) the way istiod does: the
// handler on /validate of an HTTPS mux, with istiod's schemas and TLS
// settings (TLS 1.2 at least; net/http then speaks HTTP/2). The load
// benchmark sends it the same Sidecar CREATE reviews as sidecar-webhook.
//
//	istio-validation --cert-dir DIR --port PORT
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/webhooks/validation/server"
)

// Path is where the webhook answers.
const Path = "/validate"

func main() {
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	port := flag.Int("port", 15017, "HTTPS port")
	domain := flag.String("domain-suffix", "cluster.local", "the cluster's DNS domain")
	flag.Parse()
	if err := run(*certDir, *port, *domain); err != nil {
		fmt.Fprintln(os.Stderr, "istio-validation:", err)
		os.Exit(1)
	}
}

func run(certDir string, port int, domain string) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	if _, err := server.New(server.Options{Schemas: collections.PilotGatewayAPI(), DomainSuffix: domain, Mux: mux}); err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              "127.0.0.1:" + strconv.Itoa(port),
		Handler:           mux,
		ErrorLog:          log.New(os.Stderr, "", log.LstdFlags),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }},
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	return srv.ListenAndServeTLS("", "")
}
