package load

import (
	"fmt"
	"net/http"
	"strconv"
)

// Placeholders in the body templates.
const (
	phUID  = "@UID@"
	phName = "@NAME@"
)

// Scenario is one kind of admission request, sent both to its real path and
// to the floor.
type Scenario struct {
	Name string `json:"name"`
	// Path is the webhook path of the real handler.
	Path   string `json:"path"`
	Expect Expect `json:"-"`
	// bodies has one template per namespace; request seq goes to
	// namespace seq % len(bodies).
	bodies []*Template
	name   func(seq int64, nsCount int) string
}

// Body returns the AdmissionReview of request seq.
func (s *Scenario) Body(seq int64) []byte {
	t := s.bodies[seq%int64(len(s.bodies))]
	return t.Fill(UID(seq), s.name(seq, len(s.bodies)))
}

// Target returns the load target of the scenario at baseURL+path; path
// is s.Path for the real handler, the floor's path for the floor. The
// floor is held to the same HTTP checks and answers allowed.
func (s *Scenario) Target(c *http.Client, baseURL, path string, floor bool) *AdmissionTarget {
	expect := s.Expect
	if floor {
		expect = Expect{Allowed: true}
	}
	return &AdmissionTarget{Client: c, URL: baseURL + path, Body: s.Body, Expect: expect}
}

// AdmittedSidecar: a Sidecar CREATE that passes every rule, including the
// conflict checks and the confirming read. Its selector matches nothing
// else. Names cycle through a pool of namePool per namespace: the webhook
// remembers admitted Sidecars for 10 s (they are never stored here), and
// fresh names would grow each namespace by hundreds of pending Sidecars,
// which is not the namespace size being measured.
func AdmittedSidecar(s State, validatePath string) *Scenario {
	const namePool = 8
	sc := &Scenario{Name: "sidecar-admitted", Path: validatePath,
		Expect: Expect{Allowed: true, RejectWarning: "could not confirm"},
		name: func(seq int64, n int) string {
			return "lb-adm-" + strconv.FormatInt((seq/int64(n))%namePool, 10)
		}}
	for i := range s.Namespaces {
		ns := NamespaceName(i)
		obj := fmt.Sprintf(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"%[2]s","namespace":"%[1]s","uid":"%[3]s","creationTimestamp":null,"generation":1},`+
			`"spec":{"workloadSelector":{"labels":{"app":"%[2]s"}},"egress":[{"hosts":["./*","istio-system/*"]}],"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"}}}`, ns, phName, phUID)
		sc.bodies = append(sc.bodies, NewTemplate(Review(phUID, "networking.istio.io", "v1", "Sidecar", "sidecars", ns, phName, []byte(obj)), phUID, phName))
	}
	return sc
}

// UnconfirmedAdmittedSidecar is AdmittedSidecar sent to the validator
// without the confirming read (the server's --bench-floor path, as with
// --confirm-reads=false): the difference to AdmittedSidecar is the read.
func UnconfirmedAdmittedSidecar(s State, unconfirmedPath string) *Scenario {
	sc := AdmittedSidecar(s, unconfirmedPath)
	sc.Name = "sidecar-admitted-unconfirmed"
	return sc
}

// DeniedSidecar: a Sidecar CREATE denied because its selector is the same
// as an existing Sidecar's (sc-0 selects app-0 in every namespace).
func DeniedSidecar(s State, validatePath string) *Scenario {
	sc := &Scenario{Name: "sidecar-denied", Path: validatePath, Expect: Expect{Allowed: false},
		name: func(seq int64, _ int) string { return "lb-deny-" + strconv.FormatInt(seq, 10) }}
	for i := range s.Namespaces {
		ns := NamespaceName(i)
		obj := fmt.Sprintf(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"%[2]s","namespace":"%[1]s","uid":"%[3]s","creationTimestamp":null,"generation":1},`+
			`"spec":{"workloadSelector":{"labels":{"app":"%[4]s"}},"egress":[{"hosts":["./*","istio-system/*"]}]}}`, ns, phName, phUID, AppName(0))
		sc.bodies = append(sc.bodies, NewTemplate(Review(phUID, "networking.istio.io", "v1", "Sidecar", "sidecars", ns, phName, []byte(obj)), phUID, phName))
	}
	return sc
}

// AnnotatedPod: a Pod CREATE in an injected namespace whose labels a
// workload Sidecar selects; the answer must carry the annotation patch.
// The pod is spelled as the API server sends it: defaulted, with a
// service account volume and the usual tolerations.
func AnnotatedPod(s State, podsPath string) *Scenario {
	sc := &Scenario{Name: "pod-annotated", Path: podsPath, Expect: Expect{Allowed: true, Patch: true},
		name: func(seq int64, _ int) string { return "lb-pod-" + strconv.FormatInt(seq, 10) }}
	for i := range s.Namespaces {
		ns := NamespaceName(i)
		app := s.SelectedApp(3)
		obj := fmt.Sprintf(podJSON, ns, phName, phUID, app)
		sc.bodies = append(sc.bodies, NewTemplate(Review(phUID, "", "v1", "Pod", "pods", ns, phName, []byte(obj)), phUID, phName))
	}
	return sc
}

// podJSON: %[1]s namespace, %[2]s name, %[3]s uid, %[4]s app.
const podJSON = `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"%[2]s","generateName":"%[4]s-5d8f7c9b6d-","namespace":"%[1]s","uid":"%[3]s","creationTimestamp":null,` +
	`"labels":{"app":"%[4]s","pod-template-hash":"5d8f7c9b6d","version":"v1"},"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z","prometheus.io/scrape":"true"},` +
	`"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"%[4]s-5d8f7c9b6d","uid":"6b1c0f5e-8a8e-4c57-9d4e-0d3f1f6f2a11","controller":true,"blockOwnerDeletion":true}]},` +
	`"spec":{"volumes":[{"name":"kube-api-access-x7k2p","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},{"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}],"defaultMode":420}}],` +
	`"containers":[{"name":"%[4]s","image":"registry.example/%[4]s:1.0","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],` +
	`"env":[{"name":"LOG_LEVEL","value":"info"},{"name":"POD_NAME","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],` +
	`"resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},` +
	`"volumeMounts":[{"name":"kube-api-access-x7k2p","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],` +
	`"readinessProbe":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},` +
	`"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],` +
	`"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","serviceAccount":"default","securityContext":{},"schedulerName":"default-scheduler",` +
	`"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],` +
	`"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},"status":{}}`
