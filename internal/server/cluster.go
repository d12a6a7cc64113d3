package server

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
)

// liveCluster adapts the informer view and an uncached reader to
// webhook.Cluster. Without confirm, Confirm answers from the cache.
type liveCluster struct {
	view    *informer.View
	reader  client.Reader
	confirm bool
}

func (c *liveCluster) View(context.Context) (clusterview.View, error) {
	if err := c.view.Ready(); err != nil {
		return nil, err
	}
	return c.view, nil
}

func (c *liveCluster) Confirm(ctx context.Context, view clusterview.View, namespace string) (clusterview.View, error) {
	if err := c.view.Ready(); err != nil {
		return nil, err
	}
	if !c.confirm {
		return view, nil
	}
	return informer.WithLiveSidecars(ctx, view, c.reader, namespace)
}

// syncWaiter marks the view ready once the caches have synced. It runs on
// every replica, leader or not: every replica answers admission requests.
type syncWaiter struct{ view *informer.View }

func (w syncWaiter) Start(ctx context.Context) error {
	w.view.WaitForSync(ctx)
	<-ctx.Done()
	return nil
}

func (syncWaiter) NeedLeaderElection() bool { return false }
