package main

import (
	"errors"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
)

// TestParseFlags: the local defaults, and flags given on the command line
// (those `make run` and the end-to-end tests pass among them) win over them.
func TestParseFlags(t *testing.T) {
	// local is what the command runs with when given no flags.
	local := func() devConfig {
		c := devConfig{stateDir: ".local", server: server.DefaultConfig(), freeHealthPort: true}
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		server.BindFlags(fs, &c.server)
		c.server.Host = "127.0.0.1"
		c.server.Port = 0
		c.server.MetricsAddr = "0"
		c.server.DeciderServerName = "localhost"
		c.server.AdvertiseAddress = "127.0.0.1"
		c.server.PodName = "dev"
		c.server.LeaderElectionNamespace = "kube-system"
		return c
	}
	cases := []struct {
		name     string
		args     []string
		want     func(*devConfig)
		wantLogs server.LogOptions
	}{
		{name: "no flags", want: func(*devConfig) {}},
		{
			name: "make run",
			args: []string{"--state-dir", "/repo/.local", "--log-development", "--root-namespace=istio-config"},
			want: func(c *devConfig) {
				c.stateDir = "/repo/.local"
				c.server.RootNamespace = "istio-config"
			},
			wantLogs: server.LogOptions{Development: true},
		},
		{
			name: "the end-to-end tests",
			args: []string{"--state-dir", "/tmp/e2e/state", "--assets", "/repo/bin", "--audit-interval=2s", "--allow-namespace-override",
				"--leader-elect", "--leader-election-namespace", "kube-system"},
			want: func(c *devConfig) {
				c.stateDir, c.assets = "/tmp/e2e/state", "/repo/bin"
				c.server.AuditInterval = 2 * time.Second
				c.server.Validation.AllowNamespaceOverride = true
				c.server.LeaderElect = true
			},
		},
		{
			name: "addresses given",
			args: []string{"--port=9443", "--metrics-bind-address=:8080", "--health-probe-bind-address=127.0.0.1:8081",
				"--advertise-address=127.0.0.2", "--decider-server-name=webhook.local", "--leader-election-namespace=dev", "-v=1"},
			want: func(c *devConfig) {
				c.server.Port = 9443
				c.server.MetricsAddr = ":8080"
				c.server.HealthAddr = "127.0.0.1:8081"
				c.freeHealthPort = false
				c.server.AdvertiseAddress = "127.0.0.2"
				c.server.DeciderServerName = "webhook.local"
				c.server.LeaderElectionNamespace = "dev"
			},
			wantLogs: server.LogOptions{Verbosity: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, logs, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			want := local()
			tc.want(&want)
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(devConfig{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if logs != tc.wantLogs {
				t.Errorf("logging = %+v, want %+v", logs, tc.wantLogs)
			}
		})
	}
}

func TestParseFlagsErrors(t *testing.T) {
	cases := []struct {
		args     []string
		wantHelp bool
	}{
		{args: []string{"-h"}, wantHelp: true},
		{args: []string{"--no-such-flag"}},
		{args: []string{"--port=many"}},
	}
	for _, tc := range cases {
		_, _, err := parseFlags(tc.args, io.Discard)
		if err == nil || errors.Is(err, flag.ErrHelp) != tc.wantHelp {
			t.Errorf("parseFlags(%q) = %v, want an error (help: %v)", tc.args, err, tc.wantHelp)
		}
	}
}

// TestServerFlags: the command takes every flag serve's server takes, so
// anything that runs in a cluster can be tried locally with RUN_FLAGS.
func TestServerFlags(t *testing.T) {
	var cfg devConfig
	var logs server.LogOptions
	dev := newFlagSet(&cfg, &logs)
	serve := flag.NewFlagSet("serve", flag.ContinueOnError)
	server.BindFlags(serve, &server.Config{})
	(&server.LogOptions{}).BindFlags(serve)
	serve.VisitAll(func(f *flag.Flag) {
		if dev.Lookup(f.Name) == nil {
			t.Errorf("the server's flag --%s is missing", f.Name)
		}
	})
	for _, name := range []string{"state-dir", "assets", "leader-elect", "leader-election-namespace"} {
		if dev.Lookup(name) == nil {
			t.Errorf("--%s is missing", name)
		}
	}
}
