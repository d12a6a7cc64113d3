package decider

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// NewIdentity names this process in the decision Lease: NAME_RANDOM_ADDRESS,
// where NAME is the pod's name, RANDOM tells two processes of one pod apart
// (a restarted process must not take its predecessor's lease for its own)
// and ADDRESS is host:port, where followers send their reviews. Pod names,
// random hex and addresses hold no "_", so the parts split back apart.
func NewIdentity(name, address string) (string, error) {
	if _, err := AddressOf("x_x_" + address); err != nil {
		return "", err
	}
	random := make([]byte, 4)
	if _, err := rand.Read(random); err != nil {
		return "", err
	}
	name = strings.ReplaceAll(name, "_", "-")
	if name == "" {
		name = "sidecar-webhook"
	}
	return name + "_" + hex.EncodeToString(random) + "_" + address, nil
}

// AddressOf returns the host:port a leader's identity advertises.
func AddressOf(identity string) (string, error) {
	parts := strings.SplitN(identity, "_", 3)
	if len(parts) != 3 {
		return "", fmt.Errorf("decision Lease holder %q is not NAME_RANDOM_HOST:PORT", identity)
	}
	host, port, err := net.SplitHostPort(parts[2])
	if err != nil {
		return "", fmt.Errorf("decision Lease holder %q: address: %w", identity, err)
	}
	if host == "" {
		return "", fmt.Errorf("decision Lease holder %q advertises no host", identity)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("decision Lease holder %q advertises port %q, not 1-65535", identity, port)
	}
	return parts[2], nil
}
