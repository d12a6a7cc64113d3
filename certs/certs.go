// Package certs names the files of a serving-certificate directory. They are
// the keys of the Secret cert-manager issues (see deploy/), so the server
// reads a mounted Secret and a directory written for a local run alike:
// controller-runtime's webhook server loads tls.crt and tls.key, and the
// Sidecar decision leader's followers trust ca.crt when they forward to it.
//
// Making certificates is not production code: in a cluster cert-manager
// issues and rotates them; local runs and tests use dev/devcerts.
package certs

// File names inside a certificate directory.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)
