package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// maxDNSNameLength is the longest DNS name Istio accepts
	// (pkg/config/validation/agent CheckDNS1123Preconditions).
	maxDNSNameLength = 255
	// maxDNSLabelLength is the longest label of a DNS name.
	maxDNSLabelLength = 63

	hostFormHelp = "namespace is *, . (this Sidecar's namespace) or a namespace name, optionally prefixed with ~ to exclude " +
		"(a bare ~ means every namespace), and dnsName is * or a fully qualified DNS name whose left-most label may be * " +
		"(for example istio-system/*, ./reviews.prod.svc.cluster.local, */*.example.com, ~prod-us2/*)"
)

// validateEgressHosts checks one listener's hosts. Overlapping hosts are only
// warned about, as Istio does: they are harmless but usually a mistake.
// Exclusions (~ns/dnsName) subtract hosts and take no part in either warning
// (pkg/config/validation ValidateSidecar).
func validateEgressHosts(hosts []string, namespace string, path *field.Path) (field.ErrorList, Warnings) {
	if len(hosts) == 0 {
		return field.ErrorList{rules.EgressHostsRequired.On(field.Required(path,
			"every egress listener needs at least one host in namespace/dnsName form, for example istio-system/*"))}, nil
	}
	var errs field.ErrorList
	var warns Warnings
	// byNamespace records, per resolved namespace, the dnsNames seen so far.
	byNamespace := map[string]map[string]bool{}
	for j, host := range hosts {
		hp := path.Index(j)
		errs = append(errs, validateEgressHost(host, hp)...)

		ns, name, ok := strings.Cut(host, "/")
		if !ok || strings.HasPrefix(ns, ExcludePrefix) {
			continue
		}
		if ns == "." {
			ns = namespace
		}
		seen := byNamespace[ns]
		if seen == nil {
			seen = map[string]bool{}
			byNamespace[ns] = seen
		}
		// ns/x after ns/x or ns/*, and ns/* after any other host of ns.
		if (name != "*" && (seen[name] || seen["*"])) || (name == "*" && len(seen) > 0) {
			warns = append(warns, Warnf(rules.HostDuplicate, hp, "duplicated egress host %q", host))
		}
		seen[name] = true
	}
	if byNamespace["*"]["*"] && len(byNamespace) > 1 {
		warns = append(warns, Warnf(rules.HostEverything, path, "`*/*` already selects every host; the other hosts in this listener have no effect"))
	}
	return errs, warns
}

// ExcludePrefix before a host's namespace makes it an exclusion: the hosts it
// names are subtracted from what the listener imports (istio.io/api v1.32,
// IstioEgressListener.hosts).
const ExcludePrefix = "~"

// validateEgressHost checks the namespace/dnsName form of one host, as Istio
// does (pkg/config/validation/agent ValidateNamespaceSlashWildcardHostname):
// the reference's "FQDN format" rules out short names such as prod/foo.
func validateEgressHost(host string, path *field.Path) field.ErrorList {
	ns, name, ok := strings.Cut(host, "/")
	if !ok {
		return field.ErrorList{rules.HostForm.On(field.Invalid(path, host, "must be namespace/dnsName, where "+hostFormHelp))}
	}
	var errs field.ErrorList
	if ns == "" || name == "" {
		errs = append(errs, rules.HostForm.On(field.Invalid(path, host, "neither the namespace nor the dnsName may be empty. A host is namespace/dnsName: "+hostFormHelp)))
	}
	switch bare := strings.TrimPrefix(ns, ExcludePrefix); {
	case ns == "", bare == "", bare == "*", bare == ".":
	case !isDNSLabel(bare):
		errs = append(errs, rules.HostNamespace.On(field.Invalid(path, host,
			fmt.Sprintf("namespace %q is not valid: a namespace is a DNS label (letters, digits and '-', at most %d characters). A host is namespace/dnsName: %s",
				ns, maxDNSLabelLength, hostFormHelp))))
	}
	if name != "" && name != "*" {
		if !strings.Contains(name, ".") {
			errs = append(errs, rules.HostShortName.On(field.Invalid(path, host,
				fmt.Sprintf("dnsName %q is a short name; the reference and Istio require a fully qualified name, such as %s.%s.svc.cluster.local for a Service (Istio: \"short names (non FQDN) are not allowed\")",
					name, name, exampleNamespace(ns)))))
		} else if problem := dnsNameProblem(name, true); problem != "" {
			errs = append(errs, rules.HostDNSName.On(field.Invalid(path, host,
				fmt.Sprintf("dnsName %q is not valid: %s. A host is namespace/dnsName: %s", name, problem, hostFormHelp))))
		}
	}
	return errs
}

// exampleNamespace picks a namespace to spell out in an example host name.
func exampleNamespace(ns string) string {
	switch ns = strings.TrimPrefix(ns, ExcludePrefix); ns {
	case "", "*", ".":
		return "NAMESPACE"
	}
	return ns
}

// dnsNameProblem explains why name is not a DNS name as Istio reads one, or
// returns "" if it is one (pkg/config/validation/agent ValidateFQDN and,
// with allowWildcard, ValidateWildcardDomain and ValidatePartialWildCard):
// labels of letters, digits and '-' that start and end with a letter or
// digit, at most 63 characters each and 255 in all; a trailing dot is
// allowed; the last label (before any trailing dot) is not all digits. With
// allowWildcard, the left-most label may be exactly "*".
func dnsNameProblem(name string, allowWildcard bool) string {
	if name == "" {
		return "must not be empty"
	}
	if len(name) > maxDNSNameLength {
		return fmt.Sprintf("must be no more than %d characters", maxDNSNameLength)
	}
	rest := name
	if allowWildcard {
		rest = strings.TrimPrefix(rest, "*.")
	}
	if strings.Contains(rest, "*") {
		if allowWildcard {
			return "a wildcard is allowed only as the whole left-most label, as in *.example.com"
		}
		return "wildcards are not allowed here"
	}
	if rest == "" {
		return ""
	}
	labels := strings.Split(rest, ".")
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return "the last label must not be all digits (IP addresses are not DNS names)"
	}
	for i, label := range labels {
		if i == len(labels)-1 && label == "" && i > 0 {
			break // the trailing dot of a fully qualified name
		}
		if !isDNSLabel(label) {
			return fmt.Sprintf("label %q must consist of letters, digits and '-', start and end with a letter or digit, and have at most %d characters", label, maxDNSLabelLength)
		}
	}
	return ""
}

// isDNSLabel is Istio's DNS label (pkg/config/labels IsDNS1123Label): unlike
// Kubernetes' DNS-1123 label it allows upper case.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > maxDNSLabelLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}
