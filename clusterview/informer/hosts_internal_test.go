package informer

import "testing"

func TestServiceOfHost(t *testing.T) {
	cases := []struct {
		host, name, namespace string
		ok                    bool
	}{
		{"ratings.prod.svc.cluster.local", "ratings", "prod", true},
		{"ratings.prod.svc", "ratings", "prod", true},
		{"ratings.prod", "", "", false},
		{"ratings.svc.cluster.local", "", "", false},
		{"a.b.prod.svc.cluster.local", "", "", false},
		{".prod.svc", "", "", false},
		{"ratings..svc", "", "", false},
		{"ratings.prod.svc.example.com", "", "", false},
		{"example.com", "", "", false},
	}
	for _, tc := range cases {
		name, ns, ok := serviceOfHost(tc.host)
		if name != tc.name || ns != tc.namespace || ok != tc.ok {
			t.Errorf("serviceOfHost(%q) = %q, %q, %v; want %q, %q, %v", tc.host, name, ns, ok, tc.name, tc.namespace, tc.ok)
		}
	}
}
