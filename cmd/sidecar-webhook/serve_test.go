package main

import (
	"flag"
	"io"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
)

// TestConfirmReadsFlag: the confirming read is on unless turned off, and
// the Config's zero value means on.
func TestConfirmReadsFlag(t *testing.T) {
	cases := []struct {
		args     []string
		wantSkip bool
	}{
		{args: nil, wantSkip: false},
		{args: []string{"--confirm-reads"}, wantSkip: false},
		{args: []string{"--confirm-reads=true"}, wantSkip: false},
		{args: []string{"--confirm-reads=false"}, wantSkip: true},
	}
	for _, tc := range cases {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg := server.DefaultConfig()
		server.BindFlags(fs, &cfg)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.SkipConfirmReads != tc.wantSkip {
			t.Errorf("%v: SkipConfirmReads = %v, want %v", tc.args, cfg.SkipConfirmReads, tc.wantSkip)
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := server.DefaultConfig()
	server.BindFlags(fs, &cfg)
	if err := fs.Parse([]string{"--confirm-reads=maybe"}); err == nil {
		t.Errorf("--confirm-reads=maybe was accepted")
	}
}

// TestPolicyReportsFlag: PolicyReports are on unless turned off (they are
// written only while their CRD is installed).
func TestPolicyReportsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{args: nil, want: true},
		{args: []string{"--policy-reports=false"}, want: false},
	} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg := server.DefaultConfig()
		server.BindFlags(fs, &cfg)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.PolicyReports != tc.want {
			t.Errorf("%v: PolicyReports = %v, want %v", tc.args, cfg.PolicyReports, tc.want)
		}
	}
}
