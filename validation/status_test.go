package validation

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestDenialStatus(t *testing.T) {
	one := field.ErrorList{field.Required(field.NewPath("spec", "egress").Index(0).Child("hosts"), "hosts are required")}
	st := DenialStatus("web", one)
	if st.Code != http.StatusUnprocessableEntity || st.Reason != metav1.StatusReasonInvalid {
		t.Fatalf("code/reason = %d/%s, want 422/Invalid", st.Code, st.Reason)
	}
	// No details: kubectl would otherwise print only the causes and drop the
	// message that names the webhook.
	if st.Details != nil {
		t.Fatalf("details must be empty, got %+v", st.Details)
	}
	want := `Sidecar.networking.istio.io "web" is invalid: spec.egress[0].hosts: Required value: hosts are required`
	if st.Message != want {
		t.Fatalf("message\n got %s\nwant %s", st.Message, want)
	}

	var many field.ErrorList
	for i := 0; i < MaxReportedErrors+3; i++ {
		many = append(many, field.Invalid(field.NewPath("spec", "egress").Index(i).Child("bind"), "x", "not an IP"))
	}
	st = DenialStatus("big", many)
	lines := strings.Split(st.Message, "\n")
	if lines[0] != fmt.Sprintf(`Sidecar.networking.istio.io "big" is invalid (%d errors):`, len(many)) {
		t.Fatalf("first line %q", lines[0])
	}
	if len(lines) != 1+MaxReportedErrors+1 {
		t.Fatalf("want %d error lines and a summary, got %d lines", MaxReportedErrors, len(lines))
	}
	if last := lines[len(lines)-1]; last != "- and 3 more errors not shown" {
		t.Fatalf("last line %q", last)
	}
}
