package validation

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateIngressTLS(t *testing.T) {
	simple := func() *networking.ServerTLSSettings {
		return &networking.ServerTLSSettings{
			Mode:              networking.ServerTLSSettings_SIMPLE,
			ServerCertificate: "/etc/certs/servercert.pem",
			PrivateKey:        "/etc/certs/privatekey.pem",
		}
	}
	mutual := func(mode networking.ServerTLSSettings_TLSmode) *networking.ServerTLSSettings {
		tls := simple()
		tls.Mode = mode
		tls.CaCertificates = "/etc/certs/ca.pem"
		return tls
	}
	type tlsChange = func(*networking.ServerTLSSettings)
	cases := []struct {
		name     string
		protocol string
		tls      *networking.ServerTLSSettings
		want     []errAtT
		warns    []warnAtT
	}{
		{name: "SIMPLE on HTTPS", protocol: "HTTPS", tls: simple()},
		{name: "SIMPLE on lower-case tls", protocol: "tls", tls: simple()},
		{name: "MUTUAL", protocol: "HTTPS", tls: mutual(networking.ServerTLSSettings_MUTUAL)},
		{name: "OPTIONAL_MUTUAL", protocol: "HTTPS", tls: mutual(networking.ServerTLSSettings_OPTIONAL_MUTUAL)},
		{name: "PASSTHROUGH without certificates", protocol: "TLS", tls: &networking.ServerTLSSettings{}},
		{
			name: "TLS on an HTTP port", protocol: "HTTP", tls: simple(),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "tls")},
		},
		{
			name: "TLS on a port without protocol", protocol: "", tls: simple(),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "tls")},
		},
		{
			name: "ISTIO_MUTUAL", protocol: "HTTPS",
			tls:  &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_ISTIO_MUTUAL},
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "tls.mode")},
		},
		{
			name: "AUTO_PASSTHROUGH", protocol: "HTTPS",
			tls:  &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_AUTO_PASSTHROUGH},
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "tls.mode")},
		},
		{
			name: "mode number without a name", protocol: "HTTPS",
			tls:  &networking.ServerTLSSettings{Mode: 42},
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "tls.mode")},
		},
		{
			name: "SIMPLE without certificate and key", protocol: "HTTPS",
			tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE},
			want: []errAtT{
				errAt(field.ErrorTypeRequired, "tls.serverCertificate"),
				errAt(field.ErrorTypeRequired, "tls.privateKey"),
			},
		},
		{
			name: "MUTUAL without CA bundle", protocol: "HTTPS",
			tls:  withChange(mutual(networking.ServerTLSSettings_MUTUAL), func(s *networking.ServerTLSSettings) { s.CaCertificates = "" }),
			want: []errAtT{errAt(field.ErrorTypeRequired, "tls.caCertificates")},
		},
		{
			name: "OPTIONAL_MUTUAL without anything", protocol: "HTTPS",
			tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_OPTIONAL_MUTUAL},
			want: []errAtT{
				errAt(field.ErrorTypeRequired, "tls.serverCertificate"),
				errAt(field.ErrorTypeRequired, "tls.privateKey"),
				errAt(field.ErrorTypeRequired, "tls.caCertificates"),
			},
		},
		{
			name: "MUTUAL without key", protocol: "HTTPS",
			tls:  withChange(mutual(networking.ServerTLSSettings_MUTUAL), func(s *networking.ServerTLSSettings) { s.PrivateKey = "" }),
			want: []errAtT{errAt(field.ErrorTypeRequired, "tls.privateKey")},
		},
		{
			name: "caCrl with SIMPLE", protocol: "HTTPS",
			tls:  withChange(simple(), func(s *networking.ServerTLSSettings) { s.CaCrl = "/etc/certs/crl.pem" }),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "tls.caCrl")},
		},
		{
			name: "caCrl with MUTUAL", protocol: "HTTPS",
			tls: withChange(mutual(networking.ServerTLSSettings_MUTUAL), func(s *networking.ServerTLSSettings) { s.CaCrl = "/etc/certs/crl.pem" }),
		},
		{
			name: "fields sidecars do not support", protocol: "HTTPS",
			tls: withChange(simple(), tlsChange(func(s *networking.ServerTLSSettings) {
				s.SubjectAltNames = []string{"spiffe://x"}
				s.HttpsRedirect = true
				s.CredentialName = "cred"
				s.CredentialNames = []string{"a", "b"}
				s.TlsCertificates = []*networking.ServerTLSSettings_TLSCertificate{{ServerCertificate: "/c", PrivateKey: "/k"}}
			})),
			want: []errAtT{
				errAt(field.ErrorTypeForbidden, "tls.subjectAltNames"),
				errAt(field.ErrorTypeForbidden, "tls.httpsRedirect"),
				errAt(field.ErrorTypeForbidden, "tls.credentialName"),
				errAt(field.ErrorTypeForbidden, "tls.credentialNames"),
				errAt(field.ErrorTypeForbidden, "tls.tlsCertificates"),
			},
		},
		{
			name: "protocol version numbers without a name", protocol: "HTTPS",
			tls: withChange(simple(), func(s *networking.ServerTLSSettings) { s.MinProtocolVersion = 9; s.MaxProtocolVersion = -1 }),
			want: []errAtT{
				errAt(field.ErrorTypeNotSupported, "tls.minProtocolVersion"),
				errAt(field.ErrorTypeNotSupported, "tls.maxProtocolVersion"),
			},
		},
		{
			name: "PASSTHROUGH with certificates warns", protocol: "TLS",
			tls:   withChange(simple(), func(s *networking.ServerTLSSettings) { s.Mode = networking.ServerTLSSettings_PASSTHROUGH }),
			warns: []warnAtT{{Path: "tls.mode"}},
		},
		{
			name: "TLS 1.0 without cipher suites warns", protocol: "HTTPS",
			tls:   withChange(simple(), func(s *networking.ServerTLSSettings) { s.MinProtocolVersion = networking.ServerTLSSettings_TLSV1_0 }),
			warns: []warnAtT{{Path: "tls.minProtocolVersion"}},
		},
		{
			name: "TLS 1.1 without cipher suites warns", protocol: "HTTPS",
			tls:   withChange(simple(), func(s *networking.ServerTLSSettings) { s.MinProtocolVersion = networking.ServerTLSSettings_TLSV1_1 }),
			warns: []warnAtT{{Path: "tls.minProtocolVersion"}},
		},
		{
			name: "TLS 1.0 with cipher suites", protocol: "HTTPS",
			tls: withChange(simple(), func(s *networking.ServerTLSSettings) {
				s.MinProtocolVersion = networking.ServerTLSSettings_TLSV1_0
				s.CipherSuites = []string{"ECDHE-RSA-AES128-SHA"}
			}),
		},
		{
			name: "TLS 1.2 without cipher suites", protocol: "HTTPS",
			tls: withChange(simple(), func(s *networking.ServerTLSSettings) { s.MinProtocolVersion = networking.ServerTLSSettings_TLSV1_2 }),
		},
		{
			name: "duplicate and unknown cipher suites warn", protocol: "HTTPS",
			tls: withChange(simple(), func(s *networking.ServerTLSSettings) {
				s.CipherSuites = []string{"AES128-SHA", "NOT-A-CIPHER", "AES128-SHA"}
			}),
			warns: []warnAtT{{Path: "tls.cipherSuites[1]"}, {Path: "tls.cipherSuites[2]"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warns := validateIngressTLS(tc.tls, tc.protocol, field.NewPath("tls"))
			checkObjectErrors(t, errs, tc.want)
			checkObjectWarnings(t, warns, tc.warns)
		})
	}
}
