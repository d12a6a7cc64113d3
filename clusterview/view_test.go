package clusterview

import "testing"

func TestServiceOfHost(t *testing.T) {
	cases := []struct {
		host, domain, name, namespace string
		ok                            bool
	}{
		{"ratings.prod.svc.cluster.local", "cluster.local", "ratings", "prod", true},
		{"ratings.prod.svc", "cluster.local", "ratings", "prod", true},
		{"ratings.prod.svc.corp.example", "corp.example", "ratings", "prod", true},
		{"ratings.prod.svc.cluster.local", "corp.example", "", "", false},
		{"ratings.prod", "cluster.local", "", "", false},
		{"ratings.svc.cluster.local", "cluster.local", "", "", false},
		{"a.b.prod.svc.cluster.local", "cluster.local", "", "", false},
		{".prod.svc", "cluster.local", "", "", false},
		{"ratings..svc", "cluster.local", "", "", false},
		{"ratings.prod.svc.example.com", "cluster.local", "", "", false},
		{"example.com", "cluster.local", "", "", false},
	}
	for _, tc := range cases {
		name, ns, ok := ServiceOfHost(tc.host, tc.domain)
		if name != tc.name || ns != tc.namespace || ok != tc.ok {
			t.Errorf("ServiceOfHost(%q, %q) = %q, %q, %v; want %q, %q, %v", tc.host, tc.domain, name, ns, ok, tc.name, tc.namespace, tc.ok)
		}
	}
}
