package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"fmt"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ingressTLSModes are the modes a sidecar ingress listener can use. Istio
// rejects ISTIO_MUTUAL (the sidecar's own mTLS is configured by
// PeerAuthentication) and AUTO_PASSTHROUGH (a gateway-only mode).
var ingressTLSModes = []string{
	networking.ServerTLSSettings_PASSTHROUGH.String(),
	networking.ServerTLSSettings_SIMPLE.String(),
	networking.ServerTLSSettings_MUTUAL.String(),
	networking.ServerTLSSettings_OPTIONAL_MUTUAL.String(),
}

// supportedCipherSuites are the cipher suite names Envoy accepts, as listed in
// the ServerTLSSettings API documentation. Istio ignores others.
var supportedCipherSuites = []string{
	"ECDHE-ECDSA-AES128-GCM-SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305",
	"ECDHE-RSA-CHACHA20-POLY1305",
	"ECDHE-ECDSA-AES128-SHA",
	"ECDHE-RSA-AES128-SHA",
	"ECDHE-ECDSA-AES256-SHA",
	"ECDHE-RSA-AES256-SHA",
	"AES128-GCM-SHA256",
	"AES256-GCM-SHA384",
	"AES128-SHA",
	"AES256-SHA",
	"DES-CBC3-SHA",
}

func isSupportedCipherSuite(cs string) bool {
	for _, s := range supportedCipherSuites {
		if s == cs {
			return true
		}
	}
	return false
}

// validateIngressTLS checks spec.ingress[i].tls. protocol is the listener's
// port protocol ("" when the port is missing).
func validateIngressTLS(tls *networking.ServerTLSSettings, protocol string, path *field.Path) (field.ErrorList, Warnings) {
	var errs field.ErrorList
	var warns Warnings

	if !isTLSProtocol(protocol) {
		errs = append(errs, rules.TLSPort.On(field.Forbidden(path,
			fmt.Sprintf("TLS settings are allowed only on ports with protocol HTTPS or TLS; this port's protocol is %q", protocol))))
	}

	modePath := path.Child("mode")
	mode := tls.GetMode()
	switch mode {
	case networking.ServerTLSSettings_PASSTHROUGH:
		if tls.GetServerCertificate() != "" || tls.GetPrivateKey() != "" || tls.GetCaCertificates() != "" || tls.GetCaCrl() != "" {
			warns = append(warns, Warnf(rules.TLSWeak, modePath,
				"mode is PASSTHROUGH (the default when mode is not set), which does not terminate TLS, so the certificate files are ignored; set mode to SIMPLE or MUTUAL to use them"))
		}
	case networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL, networking.ServerTLSSettings_OPTIONAL_MUTUAL:
		if tls.GetServerCertificate() == "" {
			errs = append(errs, rules.TLSCertificates.On(field.Required(path.Child("serverCertificate"),
				fmt.Sprintf("%s TLS needs the path of the server certificate file", mode))))
		}
		if tls.GetPrivateKey() == "" {
			errs = append(errs, rules.TLSCertificates.On(field.Required(path.Child("privateKey"),
				fmt.Sprintf("%s TLS needs the path of the private key file", mode))))
		}
		if mode != networking.ServerTLSSettings_SIMPLE && tls.GetCaCertificates() == "" {
			errs = append(errs, rules.TLSCertificates.On(field.Required(path.Child("caCertificates"),
				fmt.Sprintf("%s TLS needs the path of the CA bundle used to verify client certificates", mode))))
		}
		if mode == networking.ServerTLSSettings_SIMPLE && tls.GetCaCrl() != "" {
			errs = append(errs, rules.TLSCertificates.On(field.Forbidden(path.Child("caCrl"),
				"a certificate revocation list applies to client certificates, which SIMPLE TLS does not request; use MUTUAL or OPTIONAL_MUTUAL, or remove caCrl")))
		}
	default:
		// ISTIO_MUTUAL, AUTO_PASSTHROUGH and numbers without a name.
		errs = append(errs, rules.TLSMode.On(field.NotSupported(modePath, mode.String(), ingressTLSModes)))
	}

	forbid := func(set bool, name, why string) {
		if set {
			errs = append(errs, rules.TLSUnsupportedField.On(field.Forbidden(path.Child(name), name+" is not supported in sidecar ingress TLS; "+why)))
		}
	}
	forbid(len(tls.GetSubjectAltNames()) > 0, "subjectAltNames", "remove it")
	forbid(tls.GetHttpsRedirect(), "httpsRedirect", "remove it (it applies to gateways only)")
	forbid(tls.GetCredentialName() != "", "credentialName", "use serverCertificate and privateKey file paths instead")
	forbid(len(tls.GetCredentialNames()) > 0, "credentialNames", "use serverCertificate and privateKey file paths instead")
	forbid(len(tls.GetTlsCertificates()) > 0, "tlsCertificates", "use serverCertificate and privateKey file paths instead")

	errs = append(errs, validateEnum(int32(tls.GetMinProtocolVersion()), networking.ServerTLSSettings_TLSProtocol_name, path.Child("minProtocolVersion"))...)
	errs = append(errs, validateEnum(int32(tls.GetMaxProtocolVersion()), networking.ServerTLSSettings_TLSProtocol_name, path.Child("maxProtocolVersion"))...)

	switch tls.GetMinProtocolVersion() {
	case networking.ServerTLSSettings_TLSV1_0, networking.ServerTLSSettings_TLSV1_1:
		if len(tls.GetCipherSuites()) == 0 {
			warns = append(warns, Warnf(rules.TLSWeak, path.Child("minProtocolVersion"),
				"%s needs cipherSuites that TLS versions below 1.2 can use; the default cipher suites no longer include any, so such clients cannot connect",
				tls.GetMinProtocolVersion()))
		}
	}

	seen := map[string]bool{}
	for k, cs := range tls.GetCipherSuites() {
		csPath := path.Child("cipherSuites").Index(k)
		switch {
		case !isSupportedCipherSuite(cs):
			warns = append(warns, Warnf(rules.TLSWeak, csPath, "unknown cipher suite %q is ignored; supported: %s", cs, strings.Join(supportedCipherSuites, ", ")))
		case seen[cs]:
			warns = append(warns, Warnf(rules.TLSWeak, csPath, "duplicate cipher suite %q is ignored", cs))
		}
		seen[cs] = true
	}
	return errs, warns
}
