package server

import (
	"github.com/go-logr/logr"

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
type syncWaiter struct {
	view *informer.View
	log  logr.Logger
}

func (w syncWaiter) Start(ctx context.Context) error {
	if w.view.WaitForSync(ctx) {
		// Which pods get a proxy depends on what is installed; say which
		// rule applies, once, when the webhook becomes ready.
		w.log.Info("caches synced", "injection", w.view.InjectorSummary(), "rootNamespace", w.view.RootNamespace())
	}
	<-ctx.Done()
	return nil
}

func (syncWaiter) NeedLeaderElection() bool { return false }
