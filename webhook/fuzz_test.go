package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// reviewDecoder reads an AdmissionReview body the way controller-runtime
// does (v1 or v1beta1, JSON or YAML), so the fuzz test can tell what request
// the webhook answered.
var reviewDecoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	if err := admissionv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := admissionv1beta1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(scheme).UniversalDeserializer()
}()

// anyVersionReview is not registered in the scheme, so the decoder fills it
// as plain JSON whatever version the body names.
type anyVersionReview struct {
	admissionv1.AdmissionReview
}

func requestIn(body []byte) (*admissionv1.AdmissionRequest, bool) {
	var review anyVersionReview
	review.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	if _, _, err := reviewDecoder.Decode(body, nil, &review); err != nil {
		return nil, false
	}
	return review.Request, review.Request != nil
}

func FuzzHandler(f *testing.F) {
	for _, name := range []string{"global-default.yaml", "no-ip-tables.yaml", "partial-ip-tables.yaml", "prod-us1-default.yaml", "ratings.yaml"} {
		f.Add(reviewBody(f, admissionv1.Create, referenceExample(f, name)))
	}
	for _, raw := range []string{
		`{"egress":[{"hosts":["./*","./*"]}]}`,
		`{"egress":[{"captureMode":"NONE","port":{"number":3306},"hosts":["./*"]}]}`,
		`{"egress":[{"hostz":["./*"]}]}`,
		`{"egress":[{"port":{"number":70000},"hosts":["nope"]}]}`,
		`{"workloadSelector":{"labels":{}}}`,
	} {
		f.Add(reviewBody(f, admissionv1.Update, sidecarJSON("s", raw)))
	}
	f.Add(reviewBody(f, admissionv1.Delete, nil))
	f.Add(bytes.Replace(reviewBody(f, admissionv1.Create, referenceExample(f, "ratings.yaml")),
		[]byte(`admission.k8s.io/v1"`), []byte(`admission.k8s.io/v1beta1"`), 1))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`))
	f.Add([]byte(`{"request":{"uid":"u","operation":"CREATE","resource":{"group":"networking.istio.io","version":"v1","resource":"sidecars"},"object":{"spec":{"egress":[{"hosts":["./*"]}]}}}}`))
	f.Add([]byte("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest:\n  operation: CREATE\n"))
	f.Add([]byte(`{`))
	f.Add([]byte{})

	srv, _ := newServer(f)
	client := srv.Client()
	// A request the webhook cannot answer in time is a failure too: the API
	// server gives up after the configured timeout.
	client.Timeout = 10 * time.Second
	opts := validation.Options{Enforcement: validation.EnforcementDeny}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := client.Post(srv.URL+webhook.ValidateSidecarsPath, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP status %d: %s", resp.StatusCode, data)
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(data, &review); err != nil || review.Response == nil {
			t.Fatalf("the answer is not an AdmissionReview with a response (%v): %s", err, data)
		}
		r := review.Response
		if r.Result != nil && r.Result.Code >= 500 {
			// The validator without a cluster has no server-side failure;
			// a 5xx here is a recovered panic.
			t.Fatalf("server error (allowed=%v): %s", r.Allowed, r.Result.Message)
		}
		if !r.Allowed {
			return
		}

		req, ok := requestIn(body)
		if !ok {
			t.Fatalf("allowed, but the body holds no request: %s", body)
		}
		gvr := schema.GroupVersionResource{Group: req.Resource.Group, Version: req.Resource.Version, Resource: req.Resource.Resource}
		if !sidecar.IsServedGVR(gvr) {
			t.Fatalf("allowed a request for %v", gvr)
		}
		switch req.Operation {
		case admissionv1.Delete, admissionv1.Connect:
			return // nothing to judge
		case admissionv1.Create, admissionv1.Update:
		default:
			t.Fatalf("allowed operation %q", req.Operation)
		}
		obj, errs := sidecar.Decode(req.Object.Raw)
		if len(errs) > 0 {
			t.Fatalf("allowed an object that does not decode: %v", errs)
		}
		if obj.Namespace == "" {
			obj.Namespace = req.Namespace
		}
		if result := validation.Decide(obj, nil, nil, opts); !result.Allowed() {
			t.Fatalf("allowed an invalid Sidecar: %v", result.Errors)
		}
	})
}
