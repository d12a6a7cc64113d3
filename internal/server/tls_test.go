//go:build controlplane

package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
	"github.com/sidecar-webhook/sidecar-webhook/dev/devcerts"
	"github.com/sidecar-webhook/sidecar-webhook/dev/localcluster"
	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// rotationTimeout bounds how long a rewritten certificate may take to reach
// new connections: controller-runtime's certwatcher reacts to file events
// and, as a fallback, re-reads the files every 10 s.
const rotationTimeout = 25 * time.Second

// syncBuffer is a log sink shared with the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		fmt.Fprintf(&s.b, "%s %s\n", prefix, args)
	}, funcr.Options{})
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// requireAssets skips without the control-plane binaries, except under
// CI=true, where that fails.
func requireAssets(t *testing.T) {
	t.Helper()
	if err := localcluster.CheckAssets(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v (build them with `make controlplane`)", err)
		}
		t.Skipf("skipping: %v (run `make controlplane`; under CI=true this fails)", err)
	}
}

// runningServer is server.Run serving on loopback against a local control
// plane, with its certificates in certDir.
type runningServer struct {
	addr    string
	certDir string
	bundle  *devcerts.Bundle
	done    chan error
}

func startServer(t *testing.T) *runningServer {
	t.Helper()
	requireAssets(t)
	crdFile, err := crds.IstioCRDs()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := logs.logger()
	ctrllog.SetLogger(log)
	ctx, cancel := context.WithCancel(context.Background())
	cluster, err := localcluster.Start(ctx, localcluster.Options{CRDPaths: []string{crdFile}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}

	s := &runningServer{certDir: t.TempDir(), done: make(chan error, 1)}
	if s.bundle, err = devcerts.Generate([]string{"127.0.0.1", "localhost"}, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.bundle.WriteDir(s.certDir); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	healthAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))

	cfg := server.Config{
		CertDir: s.certDir, Host: "127.0.0.1", Port: port, MetricsAddr: "0", HealthAddr: healthAddr,
		Validation:   validation.Options{Enforcement: validation.EnforcementDeny},
		PodConflicts: "warn",
	}
	go func() { s.done <- server.Run(ctx, cfg, cluster.Config, log, prometheus.NewRegistry()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("server.Run: %v", err)
			}
		case <-time.After(90 * time.Second):
			// Say where it is stuck: a hang on shutdown is a bug to find,
			// not a timeout to raise.
			var stacks bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Errorf("server.Run did not return within 90s of cancellation; goroutines:\n%s", stacks.String())
		}
		if err := cluster.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})

	pool := certPool(t, s.bundle.CACert)
	testenv.Eventually(t, 60*time.Second, "a TLS handshake with the webhook server", func(context.Context) error {
		select {
		case err := <-s.done:
			t.Fatalf("server.Run returned before serving: %v", err)
		default:
		}
		_, err := handshake(s.addr, &tls.Config{RootCAs: pool})
		return err
	})
	// Wait until the caches have synced too, so that the test ends with a
	// server in its steady state (the one whose shutdown is bounded by the
	// in-flight requests, not by a sync in progress).
	testenv.Eventually(t, 60*time.Second, "the server to become ready", func(context.Context) error {
		resp, err := http.Get("http://" + healthAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	return s
}

func certPool(t *testing.T, caPEM []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in PEM")
	}
	return pool
}

func leafDER(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no certificate in PEM")
	}
	return block.Bytes
}

// handshake dials addr, completes a TLS handshake with cfg and returns the
// connection's state.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := &tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState(), nil
}

// deleteReview is an AdmissionReview the validator answers without the
// cluster: deletes are always allowed.
func deleteReview(uid string) []byte {
	r := testenv.SidecarReview(uid, "default", "tls-test", nil)
	r.Operation = admissionv1.Delete
	return r.MustBody()
}

// postReview sends a review and checks the answer is a review for uid.
func postReview(client *http.Client, addr, uid string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+webhook.ValidateSidecarsPath, bytes.NewReader(deleteReview(uid)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		return resp, fmt.Errorf("HTTP %d, body is not an AdmissionReview: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || review.Response == nil || string(review.Response.UID) != uid || !review.Response.Allowed {
		return resp, fmt.Errorf("HTTP %d, response %+v; want 200 and an allowed review for uid %s", resp.StatusCode, review.Response, uid)
	}
	return resp, nil
}

// TestTLS runs the real server (server.Run against a local control plane)
// and checks what an API server, or anything else, can negotiate with it,
// and that a certificate rewritten on disk reaches new connections without
// a restart.
func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local control plane")
	}
	s := startServer(t)
	pool := certPool(t, s.bundle.CACert)

	t.Run("versions", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			min, max uint16
			want     uint16 // 0: the handshake must fail
		}{
			{"TLS 1.0 only", tls.VersionTLS10, tls.VersionTLS10, 0},
			{"TLS 1.1 at most", tls.VersionTLS10, tls.VersionTLS11, 0},
			{"TLS 1.2 only", tls.VersionTLS12, tls.VersionTLS12, tls.VersionTLS12},
			{"TLS 1.3 only", tls.VersionTLS13, tls.VersionTLS13, tls.VersionTLS13},
			{"any version", tls.VersionTLS10, tls.VersionTLS13, tls.VersionTLS13},
		} {
			state, err := handshake(s.addr, &tls.Config{RootCAs: pool, MinVersion: tc.min, MaxVersion: tc.max})
			switch {
			case tc.want == 0 && err == nil:
				t.Errorf("%s: handshake succeeded with %s, want it refused", tc.name, tls.VersionName(state.Version))
			case tc.want == 0 && !strings.Contains(err.Error(), "protocol version"):
				t.Errorf("%s: handshake failed with %v, want a protocol version alert", tc.name, err)
			case tc.want != 0 && err != nil:
				t.Errorf("%s: %v", tc.name, err)
			case tc.want != 0 && state.Version != tc.want:
				t.Errorf("%s: negotiated %s, want %s", tc.name, tls.VersionName(state.Version), tls.VersionName(tc.want))
			}
		}
	})

	t.Run("TLS 1.2 cipher suites", func(t *testing.T) {
		// What a TLS 1.2 client gets when it offers everything Go knows.
		all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
		var ids []uint16
		for _, cs := range all {
			if slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
				ids = append(ids, cs.ID)
			}
		}
		state, err := handshake(s.addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: ids})
		if err != nil {
			t.Fatal(err)
		}
		if !isModern(state.CipherSuite) {
			t.Errorf("offered every suite, the server chose %s, which is not a forward-secret AEAD suite", tls.CipherSuiteName(state.CipherSuite))
		}

		// The certificate is ECDSA: each ECDHE-ECDSA AEAD suite works alone.
		for _, id := range []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		} {
			if _, err := handshake(s.addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{id}}); err != nil {
				t.Errorf("offering only %s: %v", tls.CipherSuiteName(id), err)
			}
		}

		// Suites the server must refuse. The RSA key exchange ones could not
		// work with an ECDSA certificate anyway; the ECDHE-ECDSA CBC ones
		// could, and Go's default server configuration accepts the first
		// (checked below), so refusing them is this server's policy.
		for _, id := range []uint16{
			tls.TLS_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		} {
			state, err := handshake(s.addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{id}})
			if err == nil {
				t.Errorf("offering only %s: the server accepted (%s)", tls.CipherSuiteName(id), tls.CipherSuiteName(state.CipherSuite))
			} else if !strings.Contains(err.Error(), "handshake failure") {
				t.Errorf("offering only %s: %v, want a handshake failure alert", tls.CipherSuiteName(id), err)
			}
		}
		// The control: a default Go TLS server with the same certificate
		// accepts a CBC suite, so the refusal above is the webhook's doing.
		if err := defaultServerAccepts(t, s.bundle, pool, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA); err != nil {
			t.Errorf("control: a default Go TLS server refuses TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA too (%v), so the check above proves nothing", err)
		}
	})

	t.Run("HTTP/2", func(t *testing.T) {
		state, err := handshake(s.addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if state.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN negotiated %q, want h2", state.NegotiatedProtocol)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
		defer client.CloseIdleConnections()
		resp, err := postReview(client, s.addr, "h2-review")
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("the review was answered over %s, want HTTP/2", resp.Proto)
		}
	})

	t.Run("certificate rotation", func(t *testing.T) {
		oldLeaf := leafDER(t, s.bundle.Cert)
		// A keep-alive client connected before the rotation.
		oldClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
		defer oldClient.CloseIdleConnections()
		resp, err := postReview(oldClient, s.addr, "before-rotation")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, oldLeaf) {
			t.Fatal("before the rotation the server presents a certificate other than the one written")
		}

		// A new CA and serving certificate, written the way a mounted
		// Secret changes (each file replaced atomically).
		rotated, err := devcerts.Generate([]string{"127.0.0.1", "localhost"}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		newLeaf := leafDER(t, rotated.Cert)
		newPool := certPool(t, rotated.CACert)
		if err := rotated.WriteDir(s.certDir); err != nil {
			t.Fatal(err)
		}
		written := time.Now()

		var lastErr error
		for {
			state, err := handshake(s.addr, &tls.Config{RootCAs: newPool})
			if err == nil {
				if !bytes.Equal(state.PeerCertificates[0].Raw, newLeaf) {
					t.Fatalf("a new connection verified against the new CA but presented another certificate")
				}
				t.Logf("a new connection got the rotated certificate %s after it was written", time.Since(written).Round(10*time.Millisecond))
				break
			}
			lastErr = err
			if time.Since(written) > rotationTimeout {
				t.Fatalf("%s after the rotation new connections still do not present the new certificate: %v", rotationTimeout, lastErr)
			}
			time.Sleep(100 * time.Millisecond)
		}
		select {
		case err := <-s.done:
			t.Fatalf("the server stopped during the rotation: %v", err)
		default:
		}

		// New connections that trust only the old CA are refused now...
		if _, err := handshake(s.addr, &tls.Config{RootCAs: pool}); err == nil {
			t.Error("a new connection still verifies against the old CA after the rotation")
		} else {
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) {
				t.Errorf("a new connection trusting only the old CA: %v, want an unknown authority error", err)
			}
		}
		// ...while a connection established before keeps working.
		resp, err = postReview(oldClient, s.addr, "after-rotation")
		if err != nil {
			t.Fatalf("the connection established before the rotation: %v", err)
		}
		if bytes.Equal(resp.TLS.PeerCertificates[0].Raw, oldLeaf) {
			t.Log("the keep-alive connection established before the rotation still serves with the old certificate")
		} else {
			t.Log("the keep-alive client reconnected and got the new certificate")
		}
	})
}

func isModern(id uint16) bool {
	switch id {
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}

// defaultServerAccepts runs a Go TLS server with its default configuration
// and the bundle's certificate and reports whether a TLS 1.2 client offering
// only suite completes a handshake with it.
func defaultServerAccepts(t *testing.T, bundle *devcerts.Bundle, pool *x509.CertPool, suite uint16) error {
	t.Helper()
	cert, err := tls.X509KeyPair(bundle.Cert, bundle.Key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.(*tls.Conn).Handshake()
	}()
	_, err = handshake(l.Addr().String(), &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
	return err
}
