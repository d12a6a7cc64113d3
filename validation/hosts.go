package validation

import (
	"fmt"
	"strconv"
	"strings"

	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// maxDNSNameLength is the longest DNS name in text form.
	maxDNSNameLength = 253

	hostFormHelp = "namespace is *, . (this Sidecar's namespace), ~ (no namespace) or a namespace name, " +
		"and dnsName is * or a DNS name whose left-most label may be * " +
		"(for example istio-system/*, ./reviews.prod.svc.cluster.local, */*.example.com)"
)

// validateEgressHosts checks one listener's hosts. Overlapping hosts are only
// warned about, as Istio does: they are harmless but usually a mistake.
func validateEgressHosts(hosts []string, namespace string, path *field.Path) (field.ErrorList, Warnings) {
	if len(hosts) == 0 {
		return field.ErrorList{field.Required(path,
			"every egress listener needs at least one host in namespace/dnsName form, for example istio-system/*")}, nil
	}
	var errs field.ErrorList
	var warns Warnings
	// byNamespace records, per resolved namespace, the dnsNames seen so far.
	byNamespace := map[string]map[string]bool{}
	for j, host := range hosts {
		hp := path.Index(j)
		errs = append(errs, validateEgressHost(host, hp)...)

		ns, name, ok := strings.Cut(host, "/")
		if !ok {
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
			warns = append(warns, Warnf(hp, "duplicated egress host %q", host))
		}
		seen[name] = true
	}
	if byNamespace["*"]["*"] && len(byNamespace) > 1 {
		warns = append(warns, Warnf(path, "`*/*` already selects every host; the other hosts in this listener have no effect"))
	}
	return errs, warns
}

// validateEgressHost checks the namespace/dnsName form of one host.
func validateEgressHost(host string, path *field.Path) field.ErrorList {
	ns, name, ok := strings.Cut(host, "/")
	if !ok {
		return field.ErrorList{field.Invalid(path, host, "must be namespace/dnsName, where "+hostFormHelp)}
	}
	var errs field.ErrorList
	switch ns {
	case "*", ".", "~":
	default:
		if msgs := utilvalidation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path, host,
				fmt.Sprintf("namespace %q is not valid (%s). A host is namespace/dnsName: %s", ns, strings.Join(msgs, "; "), hostFormHelp)))
		}
	}
	if name != "*" {
		if problem := dnsNameProblem(name, true); problem != "" {
			errs = append(errs, field.Invalid(path, host,
				fmt.Sprintf("dnsName %q is not valid: %s. A host is namespace/dnsName: %s", name, problem, hostFormHelp)))
		}
	}
	return errs
}

// dnsNameProblem explains why name is not a DNS name, or returns "" if it is
// one. A single trailing dot is accepted (the fully qualified spelling), an
// all-numeric last label is not (it would read as an IP address). With
// allowWildcard, the left-most label may be exactly "*".
func dnsNameProblem(name string, allowWildcard bool) string {
	if name == "" {
		return "must not be empty"
	}
	if len(name) > maxDNSNameLength {
		return utilvalidation.MaxLenError(maxDNSNameLength)
	}
	rest := strings.TrimSuffix(name, ".")
	if allowWildcard {
		rest = strings.TrimPrefix(rest, "*.")
	}
	if strings.Contains(rest, "*") {
		if allowWildcard {
			return "a wildcard is allowed only as the whole left-most label, as in *.example.com"
		}
		return "wildcards are not allowed here"
	}
	labels := strings.Split(rest, ".")
	for _, label := range labels {
		if msgs := utilvalidation.IsDNS1123Label(label); len(msgs) > 0 {
			return fmt.Sprintf("label %q: %s", label, strings.Join(msgs, "; "))
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return "the last label must not be all digits (IP addresses are not DNS names)"
	}
	return ""
}
