package server

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/mesh"
)

// IPFamilyAuto detects the pods' IP family from the cluster at start.
const IPFamilyAuto = "auto"

// nodeSample bounds how many nodes the detection reads: every node of a
// cluster has pod CIDRs of the same families.
const nodeSample = 10

// resolveIPFamily turns --ip-family into a family, detecting it when auto:
// the pod CIDRs of the nodes when they have any (what pods get), else the
// cluster IPs of the `kubernetes` Service (the API server's own family),
// else IPv4. What was found, and from where, is logged.
func resolveIPFamily(ctx context.Context, flag string, reader client.Reader, log logr.Logger) (mesh.IPFamily, error) {
	if flag != IPFamilyAuto && flag != "" {
		family, err := mesh.ParseIPFamily(flag)
		if err == nil {
			log.Info("IP family set by --ip-family", "ipFamily", family)
		}
		return family, err
	}
	family, source, err := detectIPFamily(ctx, reader)
	if err != nil {
		return "", fmt.Errorf("detecting the cluster's IP family (set --ip-family to skip): %w", err)
	}
	log.Info("IP family detected", "ipFamily", family, "from", source)
	return family, nil
}

func detectIPFamily(ctx context.Context, reader client.Reader) (mesh.IPFamily, string, error) {
	nodes := &corev1.NodeList{}
	if err := reader.List(ctx, nodes, client.Limit(nodeSample)); err != nil {
		return "", "", fmt.Errorf("listing nodes: %w", err)
	}
	var cidrs []string
	for _, n := range nodes.Items {
		cidrs = append(cidrs, n.Spec.PodCIDRs...)
		if n.Spec.PodCIDR != "" {
			cidrs = append(cidrs, n.Spec.PodCIDR)
		}
	}
	if family, ok := mesh.IPFamilyOf(cidrs); ok {
		return family, fmt.Sprintf("the pod CIDRs of %d node(s)", len(nodes.Items)), nil
	}
	svc := &corev1.Service{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, svc); err != nil {
		return "", "", fmt.Errorf("reading Service default/kubernetes: %w", err)
	}
	if family, ok := mesh.IPFamilyOf(append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...)); ok {
		return family, "the cluster IPs of Service default/kubernetes (no node has pod CIDRs)", nil
	}
	return mesh.IPv4, "nothing (no pod CIDRs, no cluster IP on Service default/kubernetes): IPv4 assumed", nil
}
