package informer

import (
	"context"
	"fmt"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
)

// LoadMemory reads the live cluster once (no informers) into an in-memory
// view: what `check --cluster` and `resolve --cluster` start from. The root
// namespace is opts.RootNamespace when set, else the mesh config's, else
// istio-system.
func LoadMemory(ctx context.Context, reader client.Reader, opts Options) (*clusterview.Memory, error) {
	root := opts.RootNamespace
	if root == "" {
		root = DefaultRootNamespace
		if cfg, err := LoadMeshConfig(ctx, reader, opts); err == nil && cfg.RootNamespace != "" {
			root = cfg.RootNamespace
		}
	}
	m := clusterview.NewMemory(root)
	if opts.ClusterDomain != "" {
		m.SetClusterDomain(opts.ClusterDomain)
	}
	steps := []func() error{
		func() error { return each(ctx, reader, &corev1.NamespaceList{}, m.AddNamespace) },
		func() error { return each(ctx, reader, &corev1.PodList{}, m.AddPod) },
		func() error { return each(ctx, reader, &corev1.ServiceList{}, m.AddService) },
		func() error { return each(ctx, reader, &appsv1.DeploymentList{}, m.AddDeployment) },
		func() error { return each(ctx, reader, &appsv1.StatefulSetList{}, m.AddStatefulSet) },
		func() error { return each(ctx, reader, &appsv1.DaemonSetList{}, m.AddDaemonSet) },
		func() error { return each(ctx, reader, &appsv1.ReplicaSetList{}, m.AddReplicaSet) },
		func() error { return each(ctx, reader, &batchv1.JobList{}, m.AddJob) },
		func() error { return each(ctx, reader, &batchv1.CronJobList{}, m.AddCronJob) },
		func() error { return each(ctx, reader, &networkingv1.WorkloadEntryList{}, m.AddWorkloadEntry) },
		func() error { return each(ctx, reader, &networkingv1.ServiceEntryList{}, m.AddServiceEntry) },
		func() error { return each(ctx, reader, &securityv1.PeerAuthenticationList{}, m.AddPeerAuthentication) },
		func() error {
			return each(ctx, reader, &networkingv1.SidecarList{}, func(s *networkingv1.Sidecar) { m.PutSidecar(clusterview.RefOf(s)) })
		},
		func() error {
			return each(ctx, reader, &admissionregistrationv1.MutatingWebhookConfigurationList{}, m.AddMutatingWebhookConfiguration,
				client.MatchingLabelsSelector{Selector: injectorSelector})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// LoadMeshConfig reads Istio's mesh config from the live cluster: the
// ConfigMap of opts.Revision in opts.IstioNamespace (default istio-system).
// A cluster without it has the zero Config (Istio's defaults); one that
// cannot be read or parsed is an error.
func LoadMeshConfig(ctx context.Context, reader client.Reader, opts Options) (mesh.Config, error) {
	istioNamespace := opts.IstioNamespace
	if istioNamespace == "" {
		istioNamespace = mesh.DefaultIstioNamespace
	}
	name := mesh.MeshConfigMapName(opts.Revision)
	cm := &corev1.ConfigMap{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: istioNamespace, Name: name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return mesh.Config{}, nil
		}
		return mesh.Config{}, fmt.Errorf("reading the mesh config (ConfigMap %s/%s): %w", istioNamespace, name, err)
	}
	cfg, err := mesh.ParseConfig(cm.Data[mesh.MeshConfigKey])
	if err != nil {
		return mesh.Config{}, fmt.Errorf("ConfigMap %s/%s: %w", istioNamespace, name, err)
	}
	return cfg, nil
}

// each lists every object of a kind and passes each item to add.
func each[T any](ctx context.Context, reader client.Reader, list client.ObjectList, add func(*T), opts ...client.ListOption) error {
	if err := reader.List(ctx, list, opts...); err != nil {
		return fmt.Errorf("listing %T: %w", list, err)
	}
	return meta.EachListItem(list, func(obj runtime.Object) error {
		item, ok := any(obj).(*T)
		if !ok {
			return fmt.Errorf("unexpected %T in %T", obj, list)
		}
		add(item)
		return nil
	})
}
