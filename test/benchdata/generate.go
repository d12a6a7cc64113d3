package benchdata

import (
	"encoding/json"
	"fmt"
)

// GeneratedSidecar returns the JSON of a valid Sidecar with listeners
// listeners (half ingress, half egress, each on its own port) and a
// workloadSelector app=<name>: the large-object case of the benchmarks.
func GeneratedSidecar(namespace, name string, listeners int) []byte {
	var ingress, egress []any
	for i := range listeners {
		if i%2 == 0 {
			ingress = append(ingress, map[string]any{
				"port":            map[string]any{"number": 8000 + i, "protocol": "HTTP", "name": fmt.Sprintf("http-%d", i)},
				"defaultEndpoint": fmt.Sprintf("127.0.0.1:%d", 18000+i),
				"connectionPool": map[string]any{
					"tcp":  map[string]any{"maxConnections": 100, "connectTimeout": "5s"},
					"http": map[string]any{"http1MaxPendingRequests": 64, "idleTimeout": "60s"},
				},
			})
		} else {
			egress = append(egress, map[string]any{
				"port":  map[string]any{"number": 9000 + i, "protocol": "HTTP", "name": fmt.Sprintf("egress-%d", i)},
				"hosts": []string{"./*", "istio-system/*", fmt.Sprintf("prod-%d/svc-%d.prod-%d.svc.cluster.local", i, i, i)},
			})
		}
	}
	obj := map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "Sidecar",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"workloadSelector":      map[string]any{"labels": map[string]string{"app": name}},
			"ingress":               ingress,
			"egress":                egress,
			"outboundTrafficPolicy": map[string]any{"mode": "REGISTRY_ONLY"},
		},
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return b
}
