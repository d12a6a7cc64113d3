package sidecar

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The fill sets the spec message straight from the tree that Decode has
// already parsed and shape-checked, saving protojson's second parse. It
// must give exactly what protojson.UnmarshalOptions{DiscardUnknown: true}
// gives for the tree written out as JSON: the same fields, the same
// set-but-empty messages and maps, the same nil lists. It takes only what
// it knows protojson reads the same way and reports false for anything
// else (including all that protojson refuses); Decode then resets the
// message and lets protojson decide, which also writes any error.

// fillMessage sets m from v. depth counts the messages above m, for
// protojson's recursion limit.
func fillMessage(m protoreflect.Message, v any, depth int) bool {
	md := m.Descriptor()
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return fillWellKnown(m, v, depth)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	fields := md.Fields()
	for k, item := range obj {
		fd := fields.ByJSONName(k)
		if fd == nil || fd.JSONName() != k {
			return false
		}
		if item == nil {
			// protojson skips a null field, except where null is a value.
			if isNullValue(fd) {
				return false
			}
			continue
		}
		switch {
		case fd.IsList():
			if !fillList(m.Mutable(fd).List(), fd, item, depth) {
				return false
			}
		case fd.IsMap():
			if !fillMap(m.Mutable(fd).Map(), fd, item, depth) {
				return false
			}
		default:
			// protojson refuses a second member of a oneof.
			if od := fd.ContainingOneof(); od != nil && m.WhichOneof(od) != nil {
				return false
			}
			var msg protoreflect.Value
			if fd.Message() != nil {
				msg = m.NewField(fd)
			}
			val, ok := singular(msg, fd, item, depth)
			if !ok {
				return false
			}
			m.Set(fd, val)
		}
	}
	return true
}

// isNullValue reports the fields for which protojson reads null as a value
// (google.protobuf.Value and NullValue) instead of skipping the field.
func isNullValue(fd protoreflect.FieldDescriptor) bool {
	if fd.IsList() || fd.IsMap() {
		return false
	}
	if md := fd.Message(); md != nil {
		return md.FullName() == "google.protobuf.Value"
	}
	if ed := fd.Enum(); ed != nil {
		return ed.FullName() == "google.protobuf.NullValue"
	}
	return false
}

// singular returns the value of one field, list element or map value;
// msg is a new message to fill for the message kinds (m.NewField,
// list.NewElement, map.NewValue) and is unused otherwise.
func singular(msg protoreflect.Value, fd protoreflect.FieldDescriptor, v any, depth int) (protoreflect.Value, bool) {
	if v == nil {
		// A null list entry or map value: protojson refuses most of them.
		return protoreflect.Value{}, false
	}
	if fd.Message() != nil {
		return msg, fillMessage(msg.Message(), v, depth+1)
	}
	return scalar(fd, v)
}

func fillList(list protoreflect.List, fd protoreflect.FieldDescriptor, v any, depth int) bool {
	items, ok := v.([]any)
	if !ok {
		return false
	}
	for _, item := range items {
		var msg protoreflect.Value
		if fd.Message() != nil {
			msg = list.NewElement()
		}
		val, ok := singular(msg, fd, item, depth)
		if !ok {
			return false
		}
		list.Append(val)
	}
	return true
}

func fillMap(mp protoreflect.Map, fd protoreflect.FieldDescriptor, v any, depth int) bool {
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k, item := range obj {
		key, ok := mapKey(fd.MapKey().Kind(), k)
		if !ok {
			return false
		}
		var msg protoreflect.Value
		if fd.MapValue().Message() != nil {
			msg = mp.NewValue()
		}
		val, ok := singular(msg, fd.MapValue(), item, depth)
		if !ok {
			return false
		}
		mp.Set(key, val)
	}
	return true
}

// mapKey parses a map key as protojson does (strconv, base 10).
func mapKey(kind protoreflect.Kind, k string) (protoreflect.MapKey, bool) {
	var val protoreflect.Value
	switch kind {
	case protoreflect.StringKind:
		if !utf8.ValidString(k) {
			return protoreflect.MapKey{}, false
		}
		val = protoreflect.ValueOfString(k)
	case protoreflect.BoolKind:
		if k != "true" && k != "false" {
			return protoreflect.MapKey{}, false
		}
		val = protoreflect.ValueOfBool(k == "true")
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			return protoreflect.MapKey{}, false
		}
		val = protoreflect.ValueOfInt32(int32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return protoreflect.MapKey{}, false
		}
		val = protoreflect.ValueOfInt64(n)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(k, 10, 32)
		if err != nil {
			return protoreflect.MapKey{}, false
		}
		val = protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			return protoreflect.MapKey{}, false
		}
		val = protoreflect.ValueOfUint64(n)
	default:
		return protoreflect.MapKey{}, false
	}
	return val.MapKey(), true
}

// scalar converts a non-message value. Strings must be valid UTF-8, as
// json.Marshal would otherwise change them. Integers are taken only in the
// plain form -?(0|[1-9][0-9]*), where strconv and protojson agree;
// protojson reads more (1e2, 1.0, -0 for an unsigned field), and those go
// the slow way, as do bytes, whose base64 rules are protojson's own.
func scalar(fd protoreflect.FieldDescriptor, v any) (protoreflect.Value, bool) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), true
		}
	case protoreflect.StringKind:
		if s, ok := v.(string); ok && utf8.ValidString(s) {
			return protoreflect.ValueOfString(s), true
		}
	case protoreflect.EnumKind:
		if s, ok := v.(string); ok {
			if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), true
			}
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if s, ok := integerText(v, false); ok {
			if n, err := strconv.ParseInt(s, 10, 32); err == nil {
				return protoreflect.ValueOfInt32(int32(n)), true
			}
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if s, ok := integerText(v, true); ok {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return protoreflect.ValueOfInt64(n), true
			}
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if s, ok := integerText(v, false); ok && s[0] != '-' {
			if n, err := strconv.ParseUint(s, 10, 32); err == nil {
				return protoreflect.ValueOfUint32(uint32(n)), true
			}
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if s, ok := integerText(v, true); ok && s[0] != '-' {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return protoreflect.ValueOfUint64(n), true
			}
		}
	case protoreflect.FloatKind:
		// protojson parses a number's text with ParseFloat at the field's
		// size and refuses it out of range; strings ("NaN") are left to it.
		if n, ok := v.(json.Number); ok {
			if f, err := strconv.ParseFloat(n.String(), 32); err == nil {
				return protoreflect.ValueOfFloat32(float32(f)), true
			}
		}
	case protoreflect.DoubleKind:
		if n, ok := v.(json.Number); ok {
			if f, err := strconv.ParseFloat(n.String(), 64); err == nil {
				return protoreflect.ValueOfFloat64(f), true
			}
		}
	}
	return protoreflect.Value{}, false
}

// integerText returns the text of an integer in the plain form: a JSON
// number, or a string where quoted (protojson's form for 64-bit kinds).
func integerText(v any, quoted bool) (string, bool) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = string(t)
	case string:
		if !quoted {
			return "", false
		}
		s = t
	default:
		return "", false
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || (digits[0] == '0' && len(digits) > 1) {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// fillWellKnown hands a google.protobuf message (Duration, a wrapper,
// Struct, ...) to protojson, so that its JSON forms keep protojson's exact
// rules. The recursion limit is what protojson has left at this depth when
// it reads the whole spec.
func fillWellKnown(m protoreflect.Message, v any, depth int) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	opts := protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: protowire.DefaultRecursionLimit - depth}
	return opts.Unmarshal(b, m.Interface()) == nil
}
