// Package podreconciler keeps the pod annotations of the /mutate/pods webhook
// true after admission: a Sidecar created, deleted or re-targeted later
// changes which Sidecar running pods receive, and a pod admitted while the
// webhook was unavailable (failurePolicy Ignore) was never annotated.
package podreconciler

import (
	"context"
	"fmt"
	"maps"
	"time"

	"golang.org/x/time/rate"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// ControllerName names the controller in logs and metrics.
const ControllerName = "pod-sidecar-annotations"

// DefaultNotReadyRequeue is how long a pod waits when the cluster view is not
// ready yet.
const DefaultNotReadyRequeue = 5 * time.Second

// Reconciler patches a pod's sidecar-webhook.io annotations whenever they
// differ from what resolve says now. It follows pods: whether a pod runs a
// proxy was settled when it was created (clusterview.ProxyOf at
// mesh.StageRunning), so relabelling its namespace later neither strips nor
// freezes its annotations.
type Reconciler struct {
	// Client reads pod metadata from the manager's cache; patches go to the
	// API server.
	Client client.Client
	// Reader reads whole pods from the API server: the cache holds pod
	// metadata only, and without an installed injector a pod this project
	// never saw at admission is judged by its spec too (hostNetwork).
	Reader client.Reader
	// Views returns the current cluster view, or an error while the caches
	// have not synced.
	Views func(ctx context.Context) (clusterview.View, error)
	// NotReadyRequeue is the wait before retrying a pod while Views fails;
	// zero means DefaultNotReadyRequeue.
	NotReadyRequeue time.Duration

	// patches bounds the rate of patches sent to the API server. The queue's
	// rate limiter only slows retries; a Sidecar change in the root
	// namespace enqueues every pod at once through plain adds.
	patches *rate.Limiter
}

// SetupWithManager registers the controller: pods are watched as metadata
// only, Sidecars through the typed informer the cluster view also uses (the
// manager's scheme must know networking.istio.io/v1). At most maxPerSecond
// patches are sent (no limit when it is not positive). The controller runs
// only on the leader when the manager elects one.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, maxPerSecond float64) error {
	if r.Client == nil || r.Views == nil {
		return fmt.Errorf("podreconciler: Client and Views are required")
	}
	rateLimiter := workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]()
	if maxPerSecond > 0 {
		burst := max(1, int(maxPerSecond))
		r.patches = rate.NewLimiter(rate.Limit(maxPerSecond), burst)
		rateLimiter = workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, 5*time.Minute),
			&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(maxPerSecond), burst)},
		)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&corev1.Pod{}, builder.OnlyMetadata, builder.WithPredicates(podChanged())).
		Watches(&networkingv1.Sidecar{},
			handler.EnqueueRequestsFromMapFunc(r.podsForSidecar),
			builder.WithPredicates(sidecarTargetChanged())).
		WithOptions(controller.Options{RateLimiter: rateLimiter}).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	view, err := r.Views(ctx)
	if err != nil {
		log.V(1).Info("cluster view not ready; retrying later", "error", err.Error())
		wait := r.NotReadyRequeue
		if wait <= 0 {
			wait = DefaultNotReadyRequeue
		}
		return reconcile.Result{RequeueAfter: wait}, nil
	}

	pod := informer.PodMetadata()
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if pod.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	kind, err := r.proxyKind(ctx, view, pod)
	if err != nil {
		return reconcile.Result{}, err
	}
	var desiredRes *resolve.Resolution
	res, hasProxy := resolve.ForProxy(view, pod.Namespace, kind, pod.Labels)
	if hasProxy {
		desiredRes = &res
	}
	desired, changed := resolve.AnnotationsFor(pod.Annotations, desiredRes)
	if !changed {
		return reconcile.Result{}, nil
	}
	if r.patches != nil {
		if err := r.patches.Wait(ctx); err != nil {
			return reconcile.Result{}, err
		}
	}
	// A merge patch of metadata.annotations alone: removed keys become null,
	// and annotations written by others meanwhile are left alone.
	base := pod.DeepCopy()
	pod.Annotations = desired
	if err := r.Client.Patch(ctx, pod, client.MergeFrom(base)); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("patching the annotations of pod %s: %w", req.NamespacedName, err)
	}
	log.Info("pod annotations updated", "proxy", hasProxy, "sidecar", res.Sidecar, "scope", res.Scope, "conflicts", res.Conflicts)
	return reconcile.Result{}, nil
}

// proxyKind decides whether a running pod has a proxy. When that rests on a
// prediction from labels (no injector installed, nothing recorded at
// admission), the pod's spec is read too: hostNetwork pods are never
// injected, and the cache does not hold specs.
func (r *Reconciler) proxyKind(ctx context.Context, view clusterview.View, pod *metav1.PartialObjectMetadata) (mesh.ProxyKind, error) {
	w := clusterview.Workload{Kind: clusterview.KindPod, Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels, Annotations: pod.Annotations}
	proxy := clusterview.ProxyOf(view, w)
	if proxy.Kind == mesh.NoProxy || r.Reader == nil || view.Injectors().Installed || clusterview.RecordedKind(pod.Annotations) != mesh.NoProxy {
		return proxy.Kind, nil
	}
	if _, injected := pod.Annotations[mesh.AnnotationStatus]; injected || pod.Labels[mesh.LabelGatewayManaged] != "" {
		return proxy.Kind, nil
	}
	full := &corev1.Pod{}
	if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(pod), full); err != nil {
		if apierrors.IsNotFound(err) {
			return mesh.NoProxy, nil
		}
		return mesh.NoProxy, fmt.Errorf("reading pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	w.HostNetwork = full.Spec.HostNetwork
	return clusterview.ProxyOf(view, w).Kind, nil
}

// podsForSidecar maps a Sidecar event to the pods whose Sidecar it may
// change: those of its namespace, or of every namespace for a namespace-wide
// Sidecar in the root namespace (the mesh default).
func (r *Reconciler) podsForSidecar(ctx context.Context, obj client.Object) []reconcile.Request {
	namespace := obj.GetNamespace()
	view, viewErr := r.Views(ctx)
	if s, ok := obj.(*networkingv1.Sidecar); ok && viewErr == nil && namespace == view.RootNamespace() && !sidecar.HasSelector(s) {
		namespace = "" // all namespaces
	}
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	var opts []client.ListOption
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := r.Client.List(ctx, pods, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing pods for a Sidecar change", "sidecar", obj.GetNamespace()+"/"+obj.GetName())
		return nil
	}
	var judge *clusterview.ProxyJudge
	if viewErr == nil {
		judge = clusterview.NewProxyJudge(view)
	}
	out := make([]reconcile.Request, 0, len(pods.Items))
	for _, p := range pods.Items {
		// Pods without a proxy are skipped unless they carry annotations of
		// ours to remove.
		if judge != nil && len(p.Annotations) == 0 &&
			judge.ProxyOf(clusterview.Workload{Kind: clusterview.KindPod, Namespace: p.Namespace, Name: p.Name, Labels: p.Labels}).Kind == mesh.NoProxy {
			continue
		}
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
	}
	return out
}

// podChanged passes pod events that can change the desired annotations or
// show them tampered with: creation, label and annotation changes.
func podChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return true
			}
			return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) ||
				!maps.Equal(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations())
		},
		DeleteFunc: func(event.DeleteEvent) bool { return false },
	}
}

// sidecarTargetChanged passes Sidecar events that can change which pods a
// Sidecar applies to: creation, deletion, and a changed workloadSelector.
// A spec change elsewhere does not move any pod.
func sidecarTargetChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldSidecar, okOld := e.ObjectOld.(*networkingv1.Sidecar)
			newSidecar, okNew := e.ObjectNew.(*networkingv1.Sidecar)
			if !okOld || !okNew {
				return true
			}
			return sidecar.HasSelector(oldSidecar) != sidecar.HasSelector(newSidecar) ||
				!labels.Equals(sidecar.Selector(oldSidecar), sidecar.Selector(newSidecar))
		},
	}
}
