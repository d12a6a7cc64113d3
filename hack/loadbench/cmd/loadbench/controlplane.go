package main

import (
	"context"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"

	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
	"github.com/sidecar-webhook/sidecar-webhook/dev/devcerts"
	"github.com/sidecar-webhook/sidecar-webhook/dev/localcluster"
)

// This file is the benchmark's only contact with the project's development
// tooling (the local control plane, the CRD lookup, the dev CA): when that
// tooling moves, only these two functions change.

// controlPlane is a running etcd and kube-apiserver with the Istio CRDs.
type controlPlane struct {
	Config         *rest.Config
	KubeconfigPath string
	Stop           func() error
}

// startControlPlane starts etcd and kube-apiserver from assets (empty:
// ./bin or $KUBEBUILDER_ASSETS), keeping their data in stateDir when it is
// set, and installs Istio's CRDs.
func startControlPlane(ctx context.Context, assets, stateDir string) (*controlPlane, error) {
	istioCRDs, err := crds.IstioCRDs()
	if err != nil {
		return nil, err
	}
	cluster, err := localcluster.Start(ctx, localcluster.Options{
		AssetsDir: assets, StateDir: stateDir, KeepData: stateDir != "", CRDPaths: []string{istioCRDs},
	})
	if err != nil {
		return nil, err
	}
	return &controlPlane{Config: cluster.Config, KubeconfigPath: cluster.KubeconfigPath, Stop: cluster.Stop}, nil
}

// writeServingCerts writes a CA (ca.crt) and a serving certificate for
// hosts (tls.crt, tls.key) into dir, valid for an hour, and returns the
// CA's PEM.
func writeServingCerts(dir string, hosts []string) ([]byte, error) {
	bundle, err := devcerts.Generate(hosts, time.Now(), time.Hour)
	if err != nil {
		return nil, err
	}
	if err := bundle.WriteDir(filepath.Clean(dir)); err != nil {
		return nil, err
	}
	return bundle.CACert, nil
}
