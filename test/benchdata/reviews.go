package benchdata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Placeholders in the body templates.
const (
	phUID  = "@UID@"
	phName = "@NAME@"
)

// Scenario is one kind of admission request: the reviews to send and the
// answer each must get.
type Scenario struct {
	Name string `json:"name"`
	// Path is this project's webhook path for the request.
	Path   string `json:"path"`
	Expect Expect `json:"-"`
	// bodies has one template per namespace; request seq goes to
	// namespace seq % len(bodies).
	bodies []*Template
	name   func(seq int64, nsCount int) string
}

// Expect is what an admission response must say for a request to count as
// a success.
type Expect struct {
	Allowed bool
	// Patch requires a JSON patch in the response.
	Patch bool
	// StatusCode, if not zero, is the required response.status.code.
	StatusCode int32
	// RejectWarning, if not empty, fails an answer carrying a warning that
	// contains it.
	RejectWarning string
}

// Body returns the AdmissionReview of request seq; its UID is UID(seq).
func (s *Scenario) Body(seq int64) []byte {
	t := s.bodies[seq%int64(len(s.bodies))]
	return t.Fill(UID(seq), s.name(seq, len(s.bodies)))
}

// UID is the request UID the bodies carry for request seq: unique within a
// process run.
func UID(seq int64) string { return uidPrefix + strconv.FormatInt(seq, 10) }

var uidPrefix = "lb-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"

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
		obj := fmt.Sprintf(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"%[2]s","namespace":"%[1]s","uid":"%[3]s","creationTimestamp":null,"generation":1,"managedFields":%[4]s},`+
			`"spec":{"workloadSelector":{"labels":{"app":"%[2]s"}},"egress":[{"hosts":["./*","istio-system/*"]}],"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"}}}`,
			ns, phName, phUID, managedFields(`{"f:egress":{},"f:outboundTrafficPolicy":{".":{},"f:mode":{}},"f:workloadSelector":{".":{},"f:labels":{".":{},"f:app":{}}}}`))
		sc.bodies = append(sc.bodies, NewTemplate(Review(phUID, "networking.istio.io", "v1", "Sidecar", "sidecars", ns, phName, []byte(obj)), phUID, phName))
	}
	return sc
}

// DeniedSidecar: a Sidecar CREATE denied because its selector is the same
// as an existing Sidecar's (sc-0 selects app-0 in every namespace).
func DeniedSidecar(s State, validatePath string) *Scenario {
	sc := &Scenario{Name: "sidecar-denied", Path: validatePath, Expect: Expect{Allowed: false},
		name: func(seq int64, _ int) string { return "lb-deny-" + strconv.FormatInt(seq, 10) }}
	for i := range s.Namespaces {
		ns := NamespaceName(i)
		obj := fmt.Sprintf(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"%[2]s","namespace":"%[1]s","uid":"%[3]s","creationTimestamp":null,"generation":1,"managedFields":%[5]s},`+
			`"spec":{"workloadSelector":{"labels":{"app":"%[4]s"}},"egress":[{"hosts":["./*","istio-system/*"]}]}}`,
			ns, phName, phUID, AppName(0), managedFields(`{"f:egress":{},"f:workloadSelector":{".":{},"f:labels":{".":{},"f:app":{}}}}`))
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

// ExampleSidecar: a CREATE of example (a Sidecar's JSON, such as one of
// the reference's examples) in each of the state's namespaces, in turn:
// the object as written, its namespace set to the request's and a uid
// added, as the API server sends it. Its name stays the example's, so a
// webhook that remembers what it admitted holds one entry per namespace.
// The answer must be allowed; warnings are the webhook's own business.
func ExampleSidecar(s State, name string, example []byte, validatePath string) (*Scenario, error) {
	var obj map[string]any
	if err := json.Unmarshal(example, &obj); err != nil {
		return nil, fmt.Errorf("the example is not a JSON object: %w", err)
	}
	meta, _ := obj["metadata"].(map[string]any)
	objName, _ := meta["name"].(string)
	apiVersion, _ := obj["apiVersion"].(string)
	group, version, found := strings.Cut(apiVersion, "/")
	if objName == "" || !found {
		return nil, fmt.Errorf("the example needs apiVersion group/version and metadata.name")
	}
	sc := &Scenario{Name: name, Path: validatePath, Expect: Expect{Allowed: true},
		name: func(int64, int) string { return objName }}
	for i := range s.Namespaces {
		ns := NamespaceName(i)
		meta["namespace"] = ns
		meta["uid"] = phUID
		meta["managedFields"] = json.RawMessage(managedFields(specFields(obj["spec"])))
		raw, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		sc.bodies = append(sc.bodies, NewTemplate(Review(phUID, group, version, "Sidecar", "sidecars", ns, objName, raw), phUID))
	}
	return sc, nil
}

// managedFields is the field manager's record that the API server adds to
// every object it writes before admission (here as kubectl create leaves
// it), with spec's fields (FieldsV1 JSON): the webhook decodes it too.
func managedFields(spec string) string {
	return `[{"manager":"kubectl-create","operation":"Update","apiVersion":"networking.istio.io/v1","time":"2026-01-01T00:00:00Z",` +
		`"fieldsType":"FieldsV1","fieldsV1":{"f:spec":` + spec + `}}]`
}

// specFields is the FieldsV1 of a spec's top-level fields, as set.
func specFields(spec any) string {
	fields := map[string]any{}
	if m, ok := spec.(map[string]any); ok {
		for k := range m {
			fields["f:"+k] = map[string]any{}
		}
	}
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err) // only maps of strings above
	}
	return string(b)
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

// Review builds an admission/v1 AdmissionReview request body around object
// (JSON). kind and resource follow the API server's spelling: group ""
// for the core group.
func Review(uid string, group, version, kind, resource, namespace, name string, object []byte) []byte {
	type gvk struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Kind    string `json:"kind"`
	}
	type gvr struct {
		Group    string `json:"group"`
		Version  string `json:"version"`
		Resource string `json:"resource"`
	}
	type user struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":             uid,
			"kind":            gvk{group, version, kind},
			"resource":        gvr{group, version, resource},
			"requestKind":     gvk{group, version, kind},
			"requestResource": gvr{group, version, resource},
			"name":            name,
			"namespace":       namespace,
			"operation":       "CREATE",
			"userInfo":        user{"system:admin", []string{"system:masters", "system:authenticated"}},
			"object":          json.RawMessage(object),
			"oldObject":       nil,
			"dryRun":          false,
			"options":         json.RawMessage(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`),
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		panic(err) // only fixed types above
	}
	return b
}

// Template is a request body with placeholders standing for per-request
// strings (a sequence number in names, the UID). Filling it is a few
// appends, so building bodies costs the client next to nothing: the client
// shares the machine with the server under test.
type Template struct {
	parts [][]byte
	// holes[i] is the index (into Fill's values) of the placeholder that
	// follows parts[i].
	holes []int
	size  int
}

// NewTemplate splits body at every occurrence of the placeholders.
func NewTemplate(body []byte, placeholders ...string) *Template {
	t := &Template{}
	rest := body
	for {
		at, which := -1, -1
		for i, p := range placeholders {
			if j := bytes.Index(rest, []byte(p)); j >= 0 && (at < 0 || j < at) {
				at, which = j, i
			}
		}
		if at < 0 {
			t.parts = append(t.parts, rest)
			break
		}
		t.parts = append(t.parts, rest[:at])
		t.holes = append(t.holes, which)
		rest = rest[at+len(placeholders[which]):]
	}
	for _, p := range t.parts {
		t.size += len(p)
	}
	return t
}

// Fill returns the body with each placeholder replaced by the value at the
// same position.
func (t *Template) Fill(values ...string) []byte {
	out := make([]byte, 0, t.size+64)
	for i, p := range t.parts {
		out = append(out, p...)
		if i < len(t.holes) {
			out = append(out, values[t.holes[i]]...)
		}
	}
	return out
}
