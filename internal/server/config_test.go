package server

import (
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// TestValidateLeaderElection: with leader election the other replicas
// forward to this one, so it must know the address they reach it at.
func TestValidateLeaderElection(t *testing.T) {
	base := Config{CertDir: "/certs", Port: 9443, PodConflicts: "warn", LeaderElect: true,
		Validation: validation.Options{Enforcement: validation.EnforcementDeny}}
	for _, tc := range []struct {
		name            string
		host, advertise string
		port            int
		wantErr         string
		wantHost        string
	}{
		{name: "the pod's IP", advertise: "10.0.0.7", port: 9443, wantHost: "10.0.0.7"},
		{name: "the listen address names one host", host: "127.0.0.1", port: 9443, wantHost: "127.0.0.1"},
		{name: "the advertised address wins", host: "127.0.0.1", advertise: "10.0.0.7", port: 9443, wantHost: "10.0.0.7"},
		{name: "listening everywhere, nothing advertised", port: 9443, wantErr: "--advertise-address"},
		{name: "listening on 0.0.0.0, nothing advertised", host: "0.0.0.0", port: 9443, wantErr: "--advertise-address"},
		{name: "no port", advertise: "10.0.0.7", wantErr: "--port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Host, cfg.AdvertiseAddress, cfg.Port = tc.host, tc.advertise, tc.port
			err := cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Validate: %v, want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if host, _ := cfg.advertiseHost(); host != tc.wantHost {
				t.Errorf("advertised host %q, want %q", host, tc.wantHost)
			}
		})
	}
	// Without leader election nothing is advertised, and nothing is needed.
	cfg := base
	cfg.LeaderElect = false
	if err := cfg.Validate(); err != nil {
		t.Errorf("without leader election: %v", err)
	}
}
