package mesh

import (
	"fmt"
	"net/netip"
)

// IPFamily is the IP family of a cluster's pods, which decides the loopback
// and wildcard addresses istiod binds a proxy's listeners to
// (pilot/pkg/networking/core listener_address.go).
type IPFamily string

const (
	IPv4 IPFamily = "ipv4"
	IPv6 IPFamily = "ipv6"
	// DualStack pods have an IPv4 and an IPv6 address; istiod binds both
	// loopback addresses.
	DualStack IPFamily = "dual"
)

// ParseIPFamily reads a --ip-family value (auto is the caller's business).
func ParseIPFamily(s string) (IPFamily, error) {
	switch f := IPFamily(s); f {
	case IPv4, IPv6, DualStack:
		return f, nil
	}
	return "", fmt.Errorf("IP family %q is not ipv4, ipv6 or dual", s)
}

// LoopbackAddresses are the addresses istiod binds a listener to when it
// binds to the port without an address of the user's (localHosts).
func (f IPFamily) LoopbackAddresses() []string {
	switch f {
	case IPv6:
		return []string{"::1"}
	case DualStack:
		return []string{"127.0.0.1", "::1"}
	}
	return []string{"127.0.0.1"}
}

// WildcardAddresses are the addresses of a listener that captures whatever
// iptables sends it (wildCards).
func (f IPFamily) WildcardAddresses() []string {
	switch f {
	case IPv6:
		return []string{"::"}
	case DualStack:
		return []string{"0.0.0.0", "::"}
	}
	return []string{"0.0.0.0"}
}

// IPFamilyOf is the family of a set of addresses or CIDRs (pod CIDRs of
// nodes, cluster IPs of a Service); ok is false when none parses.
func IPFamilyOf(addresses []string) (family IPFamily, ok bool) {
	var v4, v6 bool
	for _, a := range addresses {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			prefix, perr := netip.ParsePrefix(a)
			if perr != nil {
				continue
			}
			addr = prefix.Addr()
		}
		if addr.Unmap().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	switch {
	case v4 && v6:
		return DualStack, true
	case v6:
		return IPv6, true
	case v4:
		return IPv4, true
	}
	return "", false
}
