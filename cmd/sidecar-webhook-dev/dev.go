package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
	"github.com/sidecar-webhook/sidecar-webhook/dev/devcerts"
	"github.com/sidecar-webhook/sidecar-webhook/dev/localcluster"
	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// dev starts the control plane, the server and the webhook registration,
// prints the lines `make run` users and the end-to-end tests wait for, and
// runs until ctx is done or a part stops.
func dev(ctx context.Context, cfg devConfig, log logr.Logger, stdout io.Writer) error {
	stateDir, err := filepath.Abs(cfg.stateDir)
	if err != nil {
		return err
	}
	if cfg.freeHealthPort {
		port, err := freePort()
		if err != nil {
			return err
		}
		cfg.server.HealthAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	istioCRDs, err := crds.IstioCRDs()
	if err != nil {
		return err
	}
	// With a kube-controller-manager next to the API server, Deployments
	// really create pods, which the pod webhook then annotates. Without it
	// (an older bin/) the command still works, with workloads that stay templates.
	withControllerManager := localcluster.HasControllerManager(cfg.assets)
	if !withControllerManager {
		log.Info("no kube-controller-manager in the assets directory: Deployments will not create pods (run `make controlplane` to build it)")
	}
	cluster, err := localcluster.Start(ctx, localcluster.Options{
		AssetsDir:         cfg.assets,
		StateDir:          stateDir,
		CRDPaths:          []string{istioCRDs},
		Logger:            log.WithName("localcluster"),
		ControllerManager: withControllerManager,
	})
	if err != nil {
		return fmt.Errorf("starting the local control plane: %w", err)
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			log.Error(err, "stopping the local control plane")
		}
	}()

	if cfg.server.Port == 0 {
		if cfg.server.Port, err = freePort(); err != nil {
			return err
		}
	}
	cfg.server.CertDir = filepath.Join(stateDir, "certs")
	bundle, err := devcerts.Generate([]string{"127.0.0.1", "localhost"}, time.Now(), 365*24*time.Hour)
	if err != nil {
		return err
	}
	if err := bundle.WriteDir(cfg.server.CertDir); err != nil {
		return err
	}

	serverCtx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	serverDone := make(chan error, 1)
	go func() {
		serverDone <- server.Run(serverCtx, cfg.server, cluster.Config, log, prometheus.NewRegistry())
	}()
	addr := net.JoinHostPort(cfg.server.Host, strconv.Itoa(cfg.server.Port))
	if err := waitServing(ctx, addr, bundle.CACert, serverDone); err != nil {
		return err
	}
	// Registering before the caches have synced would make the first
	// kubectl apply after "ready:" fail with "caches have not synced".
	if err := waitReady(ctx, cfg.server.HealthAddr, serverDone); err != nil {
		return err
	}
	if err := registerWebhooks(cluster.Config, "https://"+addr, bundle.CACert); err != nil {
		return err
	}
	injection, err := injectionSummary(ctx, cluster.Config)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ready: export KUBECONFIG=%s\n", cluster.KubeconfigPath)
	fmt.Fprintf(stdout, "injection: %s\n", injection)
	fmt.Fprintf(stdout, "webhook: https://%s%s, %s and %s; kubectl: %s\n", addr, webhook.ValidateSidecarsPath, webhook.MutateSidecarsPath, webhook.MutatePodsPath, cluster.Kubectl)
	if withControllerManager {
		fmt.Fprintf(stdout, "kube-controller-manager: log %s\n", cluster.ControllerManagerLog)
	}

	select {
	case <-ctx.Done():
		stopServer()
		return <-serverDone
	case err := <-serverDone:
		if err == nil {
			err = fmt.Errorf("the webhook server stopped unexpectedly")
		}
		return err
	case <-cluster.Done():
		return fmt.Errorf("the local control plane stopped unexpectedly; see %s", cluster.APIServerLog)
	}
}

// injectionSummary says which rule decides which pods get a proxy: Istio's
// injector configurations when installed, else the default injector
// selectors alone (the usual case on a local control plane).
func injectionSummary(ctx context.Context, cfg *rest.Config) (string, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	list, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: mesh.LabelRevision})
	if err != nil {
		return "", fmt.Errorf("reading Istio's injector configurations: %w", err)
	}
	configs := make([]*admissionregistrationv1.MutatingWebhookConfiguration, 0, len(list.Items))
	for i := range list.Items {
		configs = append(configs, &list.Items[i])
	}
	if inj := mesh.InjectorsFrom(configs); inj.Installed {
		return fmt.Sprintf("Istio's injector is installed (%d pod webhooks): pods get a proxy as its configurations select", len(inj.Webhooks)), nil
	}
	return "no Istio injector installed: pods are judged by the default injector selectors alone (namespace istio-injection=enabled or istio.io/rev; pod sidecar.istio.io/inject=true or istio.io/rev in a namespace with neither)", nil
}

// registerWebhooks installs the configurations a cluster gets from deploy/
// (the pod webhook among them: pods in injected namespaces get the
// sidecar-webhook.io annotations at creation), pointed at the local server
// by URL, through envtest's webhook installer, which also waits until the
// API server serves them. With LocalServingCAData set envtest makes no CA of
// its own: the serving certificate must stay in the state directory with its
// ca.crt, which the decision leader's followers (other `serve` processes)
// trust.
func registerWebhooks(cfg *rest.Config, baseURL string, caBundle []byte) error {
	clientConfig := webhook.URLClientConfig(baseURL, caBundle)
	opts := webhook.ConfigOptions{ExcludedNamespaces: []string{"kube-system"}, WithPods: true}
	install := envtest.WebhookInstallOptions{
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{webhook.ValidatingConfiguration(clientConfig, opts)},
		MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{webhook.MutatingConfiguration(clientConfig, opts)},
		LocalServingCAData: caBundle,
	}
	if err := install.Install(cfg); err != nil {
		return fmt.Errorf("registering the webhooks: %w", err)
	}
	return nil
}

// waitServing waits until the webhook answers TLS handshakes with a
// certificate the CA vouches for, so the configurations are registered only
// once requests can succeed.
func waitServing(ctx context.Context, addr string, caPEM []byte, serverDone <-chan error) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	dialer := &tls.Dialer{Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-serverDone:
			return false, fmt.Errorf("the webhook server failed to start: %v", err)
		default:
		}
		// Each attempt is bounded: something else listening on the port
		// may accept the connection and never answer the handshake.
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := dialer.DialContext(attemptCtx, "tcp", addr)
		if err != nil {
			lastErr = err
			return false, nil
		}
		return true, conn.Close()
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if wait.Interrupted(err) {
		return fmt.Errorf("the webhook server did not start serving on %s within 30s: %v", addr, lastErr)
	}
	return err
}

// waitReady polls the server's /readyz until it answers 200 (the webhook
// serves and the caches have synced). Probes switched off ("0") skip it.
func waitReady(ctx context.Context, healthAddr string, serverDone <-chan error) error {
	if healthAddr == "" || healthAddr == "0" {
		return nil
	}
	url := "http://" + healthAddr + "/readyz"
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-serverDone:
			return false, fmt.Errorf("the webhook server stopped before it was ready: %v", err)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil // not listening yet
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if wait.Interrupted(err) {
		return fmt.Errorf("the webhook server was not ready within 60s (%s)", url)
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
