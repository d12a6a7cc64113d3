package informer_test

import (
	"context"
	"errors"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
)

// The confirming read's tests that need no control plane (the others are in
// confirm_test.go).

type failingReader struct{ client.Reader }

func (failingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("API server unavailable")
}

func TestWithLiveSidecarsReaderError(t *testing.T) {
	// Needs no control plane: the reader fails before anything is read.
	v, err := informer.WithLiveSidecars(context.Background(), clusterview.NewMemory("x"), failingReader{}, "ns")
	if err == nil || v != nil {
		t.Errorf("WithLiveSidecars with a failing reader = (%v, %v), want (nil, error)", v, err)
	}
}
