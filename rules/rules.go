// Package rules is the catalog of this project's rules: each has a stable
// ID (like istioctl analyze's IST0110), shown in every denial and warning,
// in the docs, in the metrics and in check's SARIF and JUnit output. IDs
// never change meaning and are never reused; a retired rule keeps its ID out
// of the catalog.
//
// A field error carries its rule's ID in field.Error.Origin (see Error); a
// warning in its Rule field.
package rules

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ID identifies a rule: "SW" and four digits.
type ID string

// Severity is what breaking a rule does.
type Severity string

const (
	// Error denies the request (in deny mode).
	Error Severity = "error"
	// Warning admits it with a warning.
	Warning Severity = "warning"
)

// Rule is one entry of the catalog.
type Rule struct {
	ID       ID
	Severity Severity
	// Summary says what the rule checks, in one line.
	Summary string
	// Source is where the rule comes from: the Sidecar reference, Istio's
	// validation, Istio's CRD schema, istiod's behaviour, or this project.
	Source string
}

// The rules. Ranges: 00xx the object's shape, 01xx the spec as a whole and
// the workloadSelector, 02xx ports and ingress listeners, 03xx egress
// listeners, 04xx egress hosts, 05xx ingress TLS, 06xx the outbound traffic
// policy, 07xx connection pools, 09xx enum values, 10xx the cluster
// (conflicts, cluster-state warnings), 11xx defaulting, 12xx how the webhook
// decided.
const (
	MalformedObject  ID = "SW0001"
	UnknownField     ID = "SW0002"
	WrongType        ID = "SW0003"
	OutOfRange       ID = "SW0004"
	UnknownEnumName  ID = "SW0005"
	NullEntry        ID = "SW0006"
	SpecRequired     ID = "SW0007"
	InternalProblem  ID = "SW0008"
	NestedTooDeep    ID = "SW0009"
	UnservedVersion  ID = "SW0010"
	EmptySpec        ID = "SW0101"
	SelectorNoLabels ID = "SW0102"
	SelectorLabel    ID = "SW0103"
	SelectorLimits   ID = "SW0104"
	SelectorNoMatch  ID = "SW0105"
	SelectorTopology ID = "SW0106"

	PortNumber            ID = "SW0201"
	PortProtocol          ID = "SW0202"
	PortName              ID = "SW0203"
	PortTargetPort        ID = "SW0204"
	IngressPortRequired   ID = "SW0205"
	IngressPortUnique     ID = "SW0206"
	IngressBind           ID = "SW0207"
	DefaultEndpointNeeded ID = "SW0208"
	DefaultEndpointForm   ID = "SW0209"
	IngressHTTPPool       ID = "SW0210"

	EgressBindNeedsPort    ID = "SW0301"
	EgressPortAndSocket    ID = "SW0302"
	EgressBind             ID = "SW0303"
	EgressSocketCapture    ID = "SW0304"
	EgressUnique           ID = "SW0305"
	EgressCatchAll         ID = "SW0306"
	EgressHostsRequired    ID = "SW0401"
	HostForm               ID = "SW0402"
	HostNamespace          ID = "SW0403"
	HostShortName          ID = "SW0404"
	HostDNSName            ID = "SW0405"
	HostDuplicate          ID = "SW0406"
	HostEverything         ID = "SW0407"
	TLSPort                ID = "SW0501"
	TLSMode                ID = "SW0502"
	TLSCertificates        ID = "SW0503"
	TLSUnsupportedField    ID = "SW0504"
	TLSWeak                ID = "SW0505"
	EgressProxy            ID = "SW0601"
	ConnectionPoolEmpty    ID = "SW0701"
	ConnectionPoolValue    ID = "SW0702"
	ConnectionPoolProtocol ID = "SW0703"
	EnumValue              ID = "SW0901"

	SecondNamespaceWide    ID = "SW1001"
	SelectorsShareWorkload ID = "SW1002"
	SelectorsOverlap       ID = "SW1003"
	SelectorsMayOverlap    ID = "SW1004"
	SelectsNothing         ID = "SW1005"
	NoSidecarProxy         ID = "SW1006"
	AmbientNamespace       ID = "SW1007"
	SelectorInRoot         ID = "SW1008"
	NamespaceWideName      ID = "SW1009"
	HiddenByEmptySelector  ID = "SW1010"
	HostNotInCluster       ID = "SW1011"
	IngressTLSMutualTLS    ID = "SW1012"
	DualStackBind          ID = "SW1101"
	UnconfirmedDecision    ID = "SW1201"
	FallbackDecision       ID = "SW1202"
)

// catalog lists every rule.
var catalog = []Rule{
	{MalformedObject, Error, "the request holds a JSON object", "this project"},
	{UnknownField, Error, "no unknown fields (the API server prunes them; check reports them)", "this project"},
	{WrongType, Error, "every field has the JSON type of its schema", "this project"},
	{OutOfRange, Error, "numbers fit their field (integers, port and count ranges)", "this project"},
	{UnknownEnumName, Error, "enum fields hold one of their names", "Istio's CRD schema"},
	{NullEntry, Error, "no null entries in ingress or egress", "Istio"},
	{SpecRequired, Error, "a Sidecar has a spec", "this project"},
	{InternalProblem, Error, "the object could be read (an internal error otherwise)", "this project"},
	{NestedTooDeep, Error, "the object is not nested absurdly deep", "this project"},
	{UnservedVersion, Error, "the apiVersion is one the API server serves for Sidecars (check only: the API server refuses others itself)", "the API server"},
	{EmptySpec, Error, "the spec configures at least one of ingress, egress, outboundTrafficPolicy, inboundConnectionPool", "Istio"},
	{SelectorNoLabels, Error, "a workloadSelector has labels", "reference (stricter than Istio)"},
	{SelectorLabel, Error, "selector label keys are not empty; no * in keys or values", "Istio"},
	{SelectorLimits, Error, "selector label values have at most 63 characters; at most 256 labels", "Istio's CRD schema"},
	{SelectorNoMatch, Warning, "a selector label no workload can carry selects nothing", "this project"},
	{SelectorTopology, Warning, "a selector label istiod adds from the workload's topology", "istiod"},
	{PortNumber, Error, "port numbers are 1-65535", "reference + Istio"},
	{PortProtocol, Error, "a port protocol is one Istio knows", "Istio"},
	{PortName, Error, "a port name is a DNS label", "Istio"},
	{PortTargetPort, Error, "targetPort is not used on Sidecars", "Istio"},
	{IngressPortRequired, Error, "every ingress listener has a port", "reference + Istio"},
	{IngressPortUnique, Error, "ingress ports are unique", "Istio"},
	{IngressBind, Error, "an ingress bind is an IP address, never a Unix socket", "reference + Istio"},
	{DefaultEndpointNeeded, Error, "every ingress listener has a defaultEndpoint", "reference (stricter than Istio)"},
	{DefaultEndpointForm, Error, "a defaultEndpoint is a loopback or wildcard address with a port, or a Unix socket", "reference + Istio"},
	{IngressHTTPPool, Warning, "HTTP connection pool settings on a non-HTTP ingress port apply nothing", "Istio"},
	{EgressBindNeedsPort, Error, "an egress bind needs a port", "reference (stricter than Istio)"},
	{EgressPortAndSocket, Error, "port 0 only with a Unix socket bind, which needs port 0 and a socket path", "reference + Istio"},
	{EgressBind, Error, "a non-socket egress bind is an IP address", "reference + Istio"},
	{EgressSocketCapture, Error, "a Unix socket bind has captureMode DEFAULT or NONE", "reference + Istio"},
	{EgressUnique, Error, "egress ports and socket binds are unique", "Istio"},
	{EgressCatchAll, Error, "at most one egress listener without a port, and it is the last", "Istio"},
	{EgressHostsRequired, Error, "every egress listener has hosts", "reference + Istio"},
	{HostForm, Error, "a host is namespace/dnsName", "reference + Istio"},
	{HostNamespace, Error, "a host's namespace is *, ., a namespace name, optionally ~ before it", "reference + Istio"},
	{HostShortName, Error, "a host's dnsName is fully qualified", "reference + Istio"},
	{HostDNSName, Error, "a host's dnsName is * or a DNS name with at most a left-most *", "reference + Istio"},
	{HostDuplicate, Warning, "a host repeats one before it in the listener", "Istio"},
	{HostEverything, Warning, "*/* next to other hosts", "Istio"},
	{TLSPort, Error, "ingress TLS only on HTTPS or TLS ports", "Istio"},
	{TLSMode, Error, "an ingress TLS mode sidecars support", "Istio"},
	{TLSCertificates, Error, "the certificates an ingress TLS mode needs", "Istio"},
	{TLSUnsupportedField, Error, "no ingress TLS fields sidecars do not support", "Istio"},
	{TLSWeak, Warning, "weak or ignored ingress TLS settings", "Istio"},
	{EgressProxy, Error, "an egressProxy only with ALLOW_ANY, with a valid host, port and subset", "Istio"},
	{ConnectionPoolEmpty, Error, "a connection pool sets http or tcp", "Istio"},
	{ConnectionPoolValue, Error, "connection pool counts are not negative; durations are whole milliseconds of at least 1ms", "Istio"},
	{ConnectionPoolProtocol, Error, "no h2UpgradePolicy UPGRADE with useClientProtocol", "Istio"},
	{EnumValue, Error, "enum values written as numbers have a name", "this project (Istio's CRD schema too)"},
	{SecondNamespaceWide, Error, "one Sidecar without workloadSelector per namespace", "reference NOTE 1"},
	{SelectorsShareWorkload, Error, "no two Sidecars select one workload with a sidecar proxy", "reference NOTE 1"},
	{SelectorsOverlap, Error, "no selector that is a subset of another's", "reference NOTE 1"},
	{SelectorsMayOverlap, Warning, "two selectors that a workload carrying both label sets would match", "this project"},
	{SelectsNothing, Warning, "a selector that selects no workload now", "this project"},
	{NoSidecarProxy, Warning, "a selector that selects only workloads without a sidecar proxy", "istiod"},
	{AmbientNamespace, Warning, "a Sidecar in an ambient namespace (IneffectivePolicy)", "istiod, istioctl analyze"},
	{SelectorInRoot, Warning, "a Sidecar with a selector in the mesh root namespace", "reference NOTE 2"},
	{NamespaceWideName, Warning, "a namespace-wide Sidecar not named default", "reference NOTE 1"},
	{HiddenByEmptySelector, Warning, "a namespace-wide Sidecar that an existing empty selector hides", "istiod"},
	{HostNotInCluster, Warning, "an egress host whose namespace or service does not exist", "this project"},
	{IngressTLSMutualTLS, Warning, "ingress TLS on a port where mutual TLS is not disabled", "reference"},
	{DualStackBind, Warning, "no bind written on a dual-stack cluster", "istiod"},
	{UnconfirmedDecision, Warning, "the decision could not be confirmed with the API server", "this project"},
	{FallbackDecision, Warning, "the decision leader did not answer; this replica decided with a direct read", "this project"},
}

// All returns the catalog, ordered by ID.
func All() []Rule {
	out := slices.Clone(catalog)
	slices.SortFunc(out, func(a, b Rule) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// Lookup returns the rule with id.
func Lookup(id ID) (Rule, bool) {
	i := slices.IndexFunc(catalog, func(r Rule) bool { return r.ID == id })
	if i < 0 {
		return Rule{}, false
	}
	return catalog[i], true
}

// On tags a field error with the rule: `rules.HostShortName.On(field.Invalid(...))`.
func (id ID) On(e *field.Error) *field.Error { return e.WithOrigin(string(id)) }

// Of returns the rule ID an error carries ("" if none).
func Of(e *field.Error) ID { return ID(e.Origin) }

// Tag attaches a rule ID to errors.
func Tag(id ID, errs ...*field.Error) field.ErrorList {
	out := make(field.ErrorList, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.WithOrigin(string(id)))
	}
	return out
}

// Text renders an error as its message line, the rule's ID in front of the
// detail: `spec.egress[0].port: Required value: [SW0301] ...`.
func Text(e *field.Error) string {
	if e.Origin == "" {
		return e.Error()
	}
	tagged := *e
	tagged.Detail = "[" + e.Origin + "] " + e.Detail
	return tagged.Error()
}

// Texts renders each error with Text.
func Texts(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, Text(e))
	}
	return out
}

// WithIDs copies errs with each rule's ID in front of its detail, for
// renderers that take a field.ErrorList (apierrors.NewInvalid).
func WithIDs(errs field.ErrorList) field.ErrorList {
	out := make(field.ErrorList, 0, len(errs))
	for _, e := range errs {
		tagged := *e
		if e.Origin != "" {
			tagged.Detail = "[" + e.Origin + "] " + e.Detail
		}
		out = append(out, &tagged)
	}
	return out
}

// IDsIn returns the rule IDs tagged in text ("[SW0301]"), in order, with
// repeats: how the metrics read them back from a response.
func IDsIn(text string) []ID {
	var out []ID
	for {
		i := strings.Index(text, "[SW")
		if i < 0 || len(text) < i+8 {
			return out
		}
		candidate := text[i+1 : i+7]
		if text[i+7] == ']' && isDigits(candidate[2:]) {
			out = append(out, ID(candidate))
		}
		text = text[i+3:]
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
