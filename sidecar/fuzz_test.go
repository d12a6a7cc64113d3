package sidecar_test

import (
	"encoding/json"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// FuzzDecodeDefaultValidate runs the admission path on arbitrary bytes:
// decode, default (on the generic JSON map, as the webhook does), validate.
func FuzzDecodeDefaultValidate(f *testing.F) {
	examples := referenceJSON(f)
	names := make([]string, 0, len(examples))
	for name := range examples {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f.Add(examples[name])
	}
	for _, seed := range sidecar.DecodeSeeds() {
		f.Add([]byte(seed))
	}

	opts := validation.Options{Enforcement: validation.EnforcementDeny}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, errs := sidecar.Decode(data)
		if len(errs) > 0 {
			if s != nil {
				t.Fatalf("Decode returned an object along with errors %v", errs)
			}
			return
		}
		if s == nil {
			t.Fatal("Decode returned neither an object nor errors")
		}

		// Deciding is deterministic.
		first := validation.Decide(s, nil, nil, opts)
		second := validation.Decide(s, nil, nil, opts)
		if diff := cmp.Diff(errorStrings(first.Errors), errorStrings(second.Errors)); diff != "" {
			t.Fatalf("Decide gave different errors on the same object (-first +second):\n%s", diff)
		}
		if diff := cmp.Diff(first.Warnings.Strings(), second.Warnings.Strings()); diff != "" {
			t.Fatalf("Decide gave different warnings on the same object (-first +second):\n%s", diff)
		}

		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			t.Fatalf("Decode accepted what encoding/json refuses as an object: %v", err)
		}
		defaults.Apply(obj, defaults.Options{})
		once, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if changes, _ := defaults.Apply(obj, defaults.Options{}); len(changes) > 0 {
			t.Fatalf("defaulting is not idempotent: the second pass changed %v", changes)
		}
		twice, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if string(once) != string(twice) {
			t.Fatalf("defaulting is not idempotent:\n once %s\ntwice %s", once, twice)
		}

		defaulted, errs := sidecar.Decode(once)
		if len(errs) > 0 {
			t.Fatalf("the defaulted object no longer decodes: %v\n%s", errs, once)
		}
		if !first.Allowed() {
			return
		}
		if after := validation.Decide(defaulted, nil, nil, opts); !after.Allowed() {
			t.Fatalf("valid before defaulting, invalid after: %v\nbefore %s\nafter  %s", errorStrings(after.Errors), data, once)
		}
	})
}

func errorStrings(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}
