package devcerts_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sidecar-webhook/sidecar-webhook/certs"
	"github.com/sidecar-webhook/sidecar-webhook/dev/devcerts"
)

func parseCert(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", pemData)
	}
	if len(rest) != 0 {
		t.Fatalf("trailing data after the certificate: %q", rest)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerate(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	validFor := 48 * time.Hour
	b, err := devcerts.Generate([]string{"localhost", "127.0.0.1", "webhook.ns.svc", "::1"}, now, validFor)
	if err != nil {
		t.Fatal(err)
	}
	ca := parseCert(t, b.CACert)
	leaf := parseCert(t, b.Cert)
	if !ca.IsCA {
		t.Error("the CA certificate is not a CA")
	}
	if leaf.IsCA {
		t.Error("the serving certificate must not be a CA")
	}
	if _, err := tls.X509KeyPair(b.Cert, b.Key); err != nil {
		t.Errorf("the key does not match the serving certificate: %v", err)
	}
	if !leaf.NotAfter.Equal(now.Add(validFor)) {
		t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, now.Add(validFor))
	}
	if leaf.NotBefore.After(now) {
		t.Errorf("NotBefore %v is after now %v", leaf.NotBefore, now)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	cases := []struct {
		name    string
		dnsName string
		at      time.Time
		wantErr bool
	}{
		{name: "DNS name localhost", dnsName: "localhost", at: now},
		{name: "IP 127.0.0.1", dnsName: "127.0.0.1", at: now},
		{name: "IP ::1", dnsName: "::1", at: now},
		{name: "service DNS name", dnsName: "webhook.ns.svc", at: now},
		{name: "a name it was not made for", dnsName: "example.com", at: now, wantErr: true},
		{name: "an IP it was not made for", dnsName: "10.0.0.1", at: now, wantErr: true},
		{name: "just before expiry", dnsName: "localhost", at: now.Add(validFor - time.Second)},
		{name: "after expiry", dnsName: "localhost", at: now.Add(validFor + time.Second), wantErr: true},
		{name: "long before issue", dnsName: "localhost", at: now.Add(-time.Hour), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{
				DNSName:     tc.dnsName,
				Roots:       roots,
				CurrentTime: tc.at,
				KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if (err != nil) != tc.wantErr {
				t.Errorf("Verify error = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestGenerateFreshEachTime(t *testing.T) {
	now := time.Now()
	a, err := devcerts.Generate([]string{"localhost"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := devcerts.Generate([]string{"localhost"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Key) == string(b.Key) || parseCert(t, a.Cert).SerialNumber.Cmp(parseCert(t, b.Cert).SerialNumber) == 0 {
		t.Error("two bundles share a key or serial number")
	}
	// A certificate from one bundle must not verify against the other's CA.
	roots := x509.NewCertPool()
	roots.AddCert(parseCert(t, b.CACert))
	if _, err := parseCert(t, a.Cert).Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots}); err == nil {
		t.Error("a serving certificate verified against another bundle's CA")
	}
}

func TestGenerateNeedsAHost(t *testing.T) {
	for _, hosts := range [][]string{nil, {}} {
		b, err := devcerts.Generate(hosts, time.Now(), time.Hour)
		if err == nil || b != nil {
			t.Errorf("Generate(%v) = %v, %v; want an error", hosts, b, err)
		}
	}
}

func TestWriteDirAndHandshake(t *testing.T) {
	b, err := devcerts.Generate([]string{"localhost", "127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "nested", "certs")
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	// Writing again replaces the files without leaving temporaries behind.
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v; the key and certificates must be readable by the owner only", e.Name(), perm)
		}
	}
	sort.Strings(names)
	if diff := cmp.Diff([]string{certs.CAFile, certs.CertFile, certs.KeyFile}, names); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	for name, want := range map[string][]byte{certs.CAFile: b.CACert, certs.CertFile: b.Cert, certs.KeyFile: b.Key} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s does not hold the bundle's content", name)
		}
	}

	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, certs.CertFile), filepath.Join(dir, certs.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.WriteString(conn, "hello")
			}()
		}
	}()

	caPEM, err := os.ReadFile(filepath.Join(dir, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, serverName := range []string{"localhost", "127.0.0.1"} {
		t.Run(serverName, func(t *testing.T) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort("127.0.0.1", port),
				&tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			got, err := io.ReadAll(conn)
			if err != nil || string(got) != "hello" {
				t.Errorf("read %q, %v", got, err)
			}
		})
	}
	t.Run("untrusted client refuses", func(t *testing.T) {
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err == nil {
			conn.Close()
			t.Error("a client without the CA completed the handshake")
		}
	})
}
