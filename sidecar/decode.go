package sidecar

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxDepth bounds nesting so a hostile document cannot exhaust the stack.
const MaxDepth = 64

// objectPath names the object as a whole in errors about the document itself
// (malformed JSON, not an object), which have no field to point at.
var objectPath = field.NewPath("<object>")

var topLevelFields = []string{"apiVersion", "kind", "metadata", "spec", "status"}

// Decode turns the JSON of one Sidecar object into the typed object. Every
// shape problem (unknown field, wrong JSON type, unknown enum value, number
// out of range) is reported as a field error with its path, so the same
// message reaches a kubectl user, a GitOps log and the offline checker. The
// object is returned only when the error list is empty.
func Decode(raw []byte) (*Sidecar, field.ErrorList) {
	// The common clean object takes one pass (fast.go); the rest, and
	// every error, take the full decode.
	if out, ok := decodeFast(raw); ok {
		return out, nil
	}
	return decode(raw, true)
}

// decode is Decode; with fill false it leaves the spec to protojson alone,
// the way Decode worked before the fill, for the tests to compare against.
func decode(raw []byte, fill bool) (*Sidecar, field.ErrorList) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, field.ErrorList{rules.MalformedObject.On(field.Invalid(objectPath, nil, fmt.Sprintf("malformed JSON: %v", err)))}
	}
	// More() is false before a stray '}' or ']', so read one more token: only
	// the end of the input may follow the object.
	if _, err := dec.Token(); err != io.EOF {
		return nil, field.ErrorList{rules.MalformedObject.On(field.Invalid(objectPath, nil, "malformed JSON: data after the object"))}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, field.ErrorList{rules.MalformedObject.On(field.Invalid(objectPath, jsonTypeName(doc), "the object must be a JSON object"))}
	}

	var errs field.ErrorList
	for _, k := range sortedKeys(obj) {
		if !contains(topLevelFields, k) {
			errs = append(errs, unknownField(field.NewPath(k), topLevelFields))
		}
	}
	out := &Sidecar{}
	for _, k := range []string{"apiVersion", "kind"} {
		v, present := obj[k]
		if !present {
			continue
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, wrongType(field.NewPath(k), v, "string"))
			continue
		}
		if k == "apiVersion" {
			out.APIVersion = s
		} else {
			out.Kind = s
		}
	}
	if meta, present := obj["metadata"]; present && meta != nil {
		errs = append(errs, decodeMetadata(meta, &out.ObjectMeta)...)
	}

	specPath := field.NewPath("spec")
	spec, present := obj["spec"]
	if !present || spec == nil {
		errs = append(errs, rules.SpecRequired.On(field.Required(specPath, "a Sidecar needs a spec")))
		return nil, errs
	}
	md := (&networkingv1alpha3.Sidecar{}).ProtoReflect().Descriptor()
	shapeErrs := checkMessage(md, spec, specPath, 0)
	errs = append(errs, shapeErrs...)
	if len(errs) > 0 {
		return nil, errs
	}
	// The shape was checked above with paths, so the message is now set
	// from the tree already parsed (fill.go). What the fill does not take,
	// protojson reads, first from the spec's own bytes. protojson refuses
	// what the decode above forgave (a repeated key, invalid UTF-8): the spec
	// is then written out again as decoded, so that the answer stays the
	// same.
	if fill {
		if fillMessage(out.Spec.ProtoReflect(), spec, 0) {
			return out, nil
		}
		out.Spec.Reset()
	}
	if rawSpec, ok := member(raw, "spec"); ok {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(rawSpec, &out.Spec); err == nil {
			return out, nil
		}
		out.Spec.Reset()
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, field.ErrorList{rules.InternalProblem.On(field.InternalError(specPath, err))}
	}
	// Anything protojson still refuses (a malformed duration, say) is
	// reported against the spec as a whole rather than dropped.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(specJSON, &out.Spec); err != nil {
		return nil, field.ErrorList{rules.WrongType.On(field.Invalid(specPath, nil, err.Error()))}
	}
	return out, nil
}

// member returns the bytes of the top-level object's member key, as sent
// (the last one when the key repeats, as when the document is decoded).
func member(raw []byte, key string) ([]byte, bool) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, false
	}
	m, ok := members[key]
	return m, ok
}

func decodeMetadata(meta any, into *metav1.ObjectMeta) field.ErrorList {
	path := field.NewPath("metadata")
	if _, ok := meta.(map[string]any); !ok {
		return field.ErrorList{wrongType(path, meta, "object")}
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return field.ErrorList{rules.InternalProblem.On(field.InternalError(path, err))}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return field.ErrorList{rules.WrongType.On(field.Invalid(path, nil, strings.TrimPrefix(err.Error(), "json: ")))}
	}
	return nil
}

func checkMessage(md protoreflect.MessageDescriptor, v any, path *field.Path, depth int) field.ErrorList {
	if v == nil {
		return nil
	}
	if depth > MaxDepth {
		return field.ErrorList{rules.NestedTooDeep.On(field.Invalid(path, nil, fmt.Sprintf("nested more than %d levels deep", MaxDepth)))}
	}
	switch md.FullName() {
	case "google.protobuf.Duration", "google.protobuf.Timestamp":
		if _, ok := v.(string); !ok {
			return field.ErrorList{wrongType(path, v, "string")}
		}
		return nil
	case "google.protobuf.BoolValue":
		return checkScalar(protoreflect.BoolKind, nil, v, path)
	case "google.protobuf.StringValue", "google.protobuf.BytesValue":
		return checkScalar(protoreflect.StringKind, nil, v, path)
	case "google.protobuf.UInt32Value":
		return checkScalar(protoreflect.Uint32Kind, nil, v, path)
	case "google.protobuf.Int32Value":
		return checkScalar(protoreflect.Int32Kind, nil, v, path)
	case "google.protobuf.UInt64Value":
		return checkScalar(protoreflect.Uint64Kind, nil, v, path)
	case "google.protobuf.Int64Value":
		return checkScalar(protoreflect.Int64Kind, nil, v, path)
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue":
		return checkScalar(protoreflect.DoubleKind, nil, v, path)
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any":
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return field.ErrorList{wrongType(path, v, "object")}
	}
	fields := md.Fields()
	var errs field.ErrorList
	for _, k := range sortedKeys(obj) {
		// ByJSONName also answers to a lowercased name for some fields;
		// only the JSON name itself is accepted.
		fd := fields.ByJSONName(k)
		if fd == nil || fd.JSONName() != k {
			errs = append(errs, unknownField(path.Child(k), knownFields(fields)))
			continue
		}
		errs = append(errs, checkField(fd, obj[k], path.Child(k), depth+1)...)
	}
	return errs
}

// knownFields are the JSON names of a message's fields, sorted, for the
// message that names an unknown field.
func knownFields(fields protoreflect.FieldDescriptors) []string {
	known := make([]string, 0, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		known = append(known, fields.Get(i).JSONName())
	}
	sort.Strings(known)
	return known
}

func checkField(fd protoreflect.FieldDescriptor, v any, path *field.Path, depth int) field.ErrorList {
	if v == nil {
		return nil
	}
	switch {
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			return field.ErrorList{wrongType(path, v, "object")}
		}
		var errs field.ErrorList
		for _, k := range sortedKeys(obj) {
			errs = append(errs, checkSingular(fd.MapValue(), obj[k], path.Key(k), depth+1)...)
		}
		return errs
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			return field.ErrorList{wrongType(path, v, "array")}
		}
		var errs field.ErrorList
		for i, item := range list {
			if item == nil {
				errs = append(errs, rules.NullEntry.On(field.Invalid(path.Index(i), nil, "must not be null")))
				continue
			}
			errs = append(errs, checkSingular(fd, item, path.Index(i), depth+1)...)
		}
		return errs
	default:
		return checkSingular(fd, v, path, depth)
	}
}

func checkSingular(fd protoreflect.FieldDescriptor, v any, path *field.Path, depth int) field.ErrorList {
	if v == nil {
		return nil
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkMessage(fd.Message(), v, path, depth)
	case protoreflect.EnumKind:
		return checkScalar(fd.Kind(), fd.Enum(), v, path)
	default:
		return checkScalar(fd.Kind(), nil, v, path)
	}
}

func checkScalar(kind protoreflect.Kind, enum protoreflect.EnumDescriptor, v any, path *field.Path) field.ErrorList {
	switch kind {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return field.ErrorList{wrongType(path, v, "boolean")}
		}
	case protoreflect.StringKind, protoreflect.BytesKind:
		if _, ok := v.(string); !ok {
			return field.ErrorList{wrongType(path, v, "string")}
		}
	case protoreflect.EnumKind:
		s, ok := v.(string)
		values := enum.Values()
		if !ok || values.ByName(protoreflect.Name(s)) == nil {
			names := make([]string, 0, values.Len())
			for i := 0; i < values.Len(); i++ {
				names = append(names, string(values.Get(i).Name()))
			}
			return field.ErrorList{rules.UnknownEnumName.On(field.NotSupported(path, v, names))}
		}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if _, ok := v.(json.Number); !ok {
			return field.ErrorList{wrongType(path, v, "number")}
		}
	default:
		return checkInteger(kind, v, path)
	}
	return nil
}

func checkInteger(kind protoreflect.Kind, v any, path *field.Path) field.ErrorList {
	var text string
	switch n := v.(type) {
	case json.Number:
		text = n.String()
	case string:
		// protojson writes 64-bit integers as strings; accept them there only.
		if kind != protoreflect.Int64Kind && kind != protoreflect.Uint64Kind &&
			kind != protoreflect.Sint64Kind && kind != protoreflect.Sfixed64Kind && kind != protoreflect.Fixed64Kind {
			return field.ErrorList{wrongType(path, v, "integer")}
		}
		text = n
	default:
		return field.ErrorList{wrongType(path, v, "integer")}
	}
	var lo, hi float64
	switch kind {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		lo, hi = math.MinInt32, math.MaxInt32
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		lo, hi = 0, math.MaxUint32
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		lo, hi = 0, math.MaxUint64
	default:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		u, uerr := strconv.ParseUint(text, 10, 64)
		if uerr != nil {
			return field.ErrorList{rules.WrongType.On(field.Invalid(path, v, "must be an integer"))}
		}
		if float64(u) > hi {
			return field.ErrorList{rules.OutOfRange.On(field.Invalid(path, v, fmt.Sprintf("must be between %.0f and %.0f", lo, hi)))}
		}
		return nil
	}
	if float64(i) < lo || float64(i) > hi {
		return field.ErrorList{rules.OutOfRange.On(field.Invalid(path, v, fmt.Sprintf("must be between %.0f and %.0f", lo, hi)))}
	}
	return nil
}

func unknownField(path *field.Path, known []string) *field.Error {
	return rules.UnknownField.On(field.Forbidden(path, fmt.Sprintf("unknown field; known fields here: %s", strings.Join(known, ", "))))
}

func wrongType(path *field.Path, v any, want string) *field.Error {
	return rules.WrongType.On(field.TypeInvalid(path, shortValue(v), fmt.Sprintf("must be a JSON %s, not %s", want, jsonTypeName(v))))
}

// shortValue keeps huge or nested values out of error messages.
func shortValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return "<object>"
	case []any:
		return "<array>"
	case string:
		if len(t) > 64 {
			return t[:64] + "..."
		}
	}
	return v
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
