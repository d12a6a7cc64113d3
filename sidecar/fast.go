package sidecar

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The fast path reads the common clean Sidecar in one pass over its bytes:
// it fills the spec message while it scans, instead of parsing the document
// into a generic tree, checking the tree's shape and then filling the
// message from it (decode). It accepts a subset of what decode accepts and
// answers exactly as decode does for that subset: the same TypeMeta and
// ObjectMeta, the same spec message (reflect.DeepEqual and proto.Equal).
// Whatever it is not sure of (a syntax error, an escape in a key, invalid
// UTF-8, a duplicate key anywhere, a null where the tree would keep it, an
// integer not in the plain form, bytes, an unknown field, ...) it declines,
// and Decode runs the full decode, which also writes every error. It never
// reports errors itself, so it must never accept what decode refuses.

// fastMaxDepth bounds the nesting the fast path reads: far more than a
// Sidecar has, and far below MaxDepth, so the depth errors stay decode's.
const fastMaxDepth = 16

// fastMaxKeys bounds the keys of one object outside the spec, whose
// duplicates are found by comparing with each key before.
const fastMaxKeys = 256

// decodeFast returns the Sidecar of raw, or false when raw is not one it
// is sure to decode as decode does.
func decodeFast(raw []byte) (*Sidecar, bool) {
	s := fastScanner{data: raw}
	out := &Sidecar{}
	var seen uint8
	var metadata []byte
	hasSpec := false
	s.skipSpace()
	ok := s.object(func(key []byte, escaped bool) bool {
		bit := topLevelField(key)
		if escaped || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		// A null is skipped or refused depending on the member; not worth
		// the cases here.
		if s.peek() == 'n' {
			return false
		}
		switch string(key) {
		case "apiVersion":
			v, ok := s.text()
			out.APIVersion = v
			return ok
		case "kind":
			v, ok := s.text()
			out.Kind = v
			return ok
		case "metadata":
			start := s.pos
			if !s.metadata() {
				return false
			}
			metadata = s.data[start:s.pos]
			return true
		case "spec":
			hasSpec = true
			return s.message(out.Spec.ProtoReflect(), 0)
		default: // status, which decode ignores
			return s.skipValue(0)
		}
	})
	s.skipSpace()
	if !ok || s.pos != len(s.data) || !hasSpec {
		return nil, false
	}
	switch {
	case metadata != nil && s.metadataAsTree:
		// managedFields in a form the fast path does not check: read the
		// metadata exactly as decode does.
		var tree any
		dec := json.NewDecoder(bytes.NewReader(metadata))
		dec.UseNumber()
		if dec.Decode(&tree) != nil || len(decodeMetadata(tree, &out.ObjectMeta)) > 0 {
			return nil, false
		}
	case metadata != nil:
		// decode writes the parsed metadata out again and reads that;
		// without duplicate keys, invalid UTF-8, lone surrogates or fields
		// kept as raw JSON, and with every field name spelled exactly
		// (encoding/json also matches other cases), the bytes as sent read
		// the same.
		dec := json.NewDecoder(bytes.NewReader(metadata))
		dec.DisallowUnknownFields()
		if dec.Decode(&out.ObjectMeta) != nil || !normalizeFieldsV1(out.ObjectMeta.ManagedFields) {
			return nil, false
		}
	}
	return out, true
}

// normalizeFieldsV1 makes each managedFields entry's fieldsV1, which keeps
// the raw JSON it was read from, what decode's reading gives: decode writes
// the parsed metadata out again (keys sorted, no spaces, HTML characters
// escaped) and reads that. The API server sets managedFields on every
// write, so this is the common case behind it.
func normalizeFieldsV1(entries []metav1.ManagedFieldsEntry) bool {
	for i := range entries {
		f := entries[i].FieldsV1
		sent := f.GetRawBytes()
		if sent == nil {
			continue
		}
		var tree any
		dec := json.NewDecoder(bytes.NewReader(sent))
		dec.UseNumber()
		if dec.Decode(&tree) != nil {
			return false
		}
		raw, err := json.Marshal(tree)
		if err != nil {
			return false
		}
		f.SetRawBytes(raw)
	}
	return true
}

// topLevelField returns a bit for each member decode knows, 0 for others.
func topLevelField(key []byte) uint8 {
	switch string(key) {
	case "apiVersion":
		return 1 << 0
	case "kind":
		return 1 << 1
	case "metadata":
		return 1 << 2
	case "spec":
		return 1 << 3
	case "status":
		return 1 << 4
	}
	return 0
}

// objectMetaField returns a bit for each field of metav1.ObjectMeta the
// fast path takes, by its exact JSON name, and 0 for the others.
func objectMetaField(key []byte) uint32 {
	switch string(key) {
	case "managedFields":
		return 1 << 14
	case "name":
		return 1 << 0
	case "generateName":
		return 1 << 1
	case "namespace":
		return 1 << 2
	case "selfLink":
		return 1 << 3
	case "uid":
		return 1 << 4
	case "resourceVersion":
		return 1 << 5
	case "generation":
		return 1 << 6
	case "creationTimestamp":
		return 1 << 7
	case "deletionTimestamp":
		return 1 << 8
	case "deletionGracePeriodSeconds":
		return 1 << 9
	case "labels":
		return 1 << 10
	case "annotations":
		return 1 << 11
	case "ownerReferences":
		return 1 << 12
	case "finalizers":
		return 1 << 13
	}
	return 0
}

// ownerReferenceField is objectMetaField for metav1.OwnerReference.
func ownerReferenceField(key []byte) uint32 {
	switch string(key) {
	case "apiVersion":
		return 1 << 0
	case "kind":
		return 1 << 1
	case "name":
		return 1 << 2
	case "uid":
		return 1 << 3
	case "controller":
		return 1 << 4
	case "blockOwnerDeletion":
		return 1 << 5
	}
	return 0
}

// fastScanner reads JSON (RFC 8259) from data. Each method reading a value
// starts at its first byte and stops right after it; the methods report
// false on anything they do not take, which ends the fast path.
type fastScanner struct {
	data []byte
	pos  int
	// buf holds the last string unescaped.
	buf []byte
	// keys are the keys of the objects being skipped, innermost last.
	keys [][]byte
	// metadataAsTree: the metadata holds managedFields in a form only
	// decode's own reading of the metadata is sure to reproduce.
	metadataAsTree bool
}

func (s *fastScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *fastScanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// consume skips c if it comes next.
func (s *fastScanner) consume(c byte) bool {
	if s.peek() == c {
		s.pos++
		return true
	}
	return false
}

func (s *fastScanner) literal(word string) bool {
	if bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		s.pos += len(word)
		return true
	}
	return false
}

// object reads an object, calling member with each key (as sent, without
// the quotes; escaped says it holds an escape) when the scanner is at the
// member's value, which member must read.
func (s *fastScanner) object(member func(key []byte, escaped bool) bool) bool {
	if !s.consume('{') {
		return false
	}
	s.skipSpace()
	if s.consume('}') {
		return true
	}
	for {
		s.skipSpace()
		key, escaped, ok := s.str()
		if !ok {
			return false
		}
		s.skipSpace()
		if !s.consume(':') {
			return false
		}
		s.skipSpace()
		if !member(key, escaped) {
			return false
		}
		s.skipSpace()
		if !s.consume(',') {
			return s.consume('}')
		}
	}
}

// array reads an array, calling item at each entry, which item must read.
func (s *fastScanner) array(item func() bool) bool {
	if !s.consume('[') {
		return false
	}
	s.skipSpace()
	if s.consume(']') {
		return true
	}
	for {
		s.skipSpace()
		if !item() {
			return false
		}
		s.skipSpace()
		if !s.consume(',') {
			return s.consume(']')
		}
	}
}

// str reads a string and returns its bytes between the quotes. It refuses
// control characters, invalid UTF-8 and lone surrogates: encoding/json
// replaces the last two with U+FFFD, which protojson does not.
func (s *fastScanner) str() (raw []byte, escaped, ok bool) {
	if !s.consume('"') {
		return nil, false, false
	}
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			raw = s.data[start:s.pos]
			s.pos++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			if !s.escape() {
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, false, false
			}
			s.pos += size
		}
	}
	return nil, false, false
}

// escape reads the escape at s.pos; a \u surrogate must be a high one
// followed by a low one.
func (s *fastScanner) escape() bool {
	if s.pos+1 >= len(s.data) {
		return false
	}
	switch s.data[s.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
		return true
	case 'u':
		r, ok := hex4(s.data[s.pos+2:])
		if !ok {
			return false
		}
		s.pos += 6
		if !utf16.IsSurrogate(r) {
			return true
		}
		if r >= 0xdc00 || !bytes.HasPrefix(s.data[s.pos:], []byte(`\u`)) {
			return false
		}
		low, ok := hex4(s.data[s.pos+2:])
		if !ok || low < 0xdc00 || low > 0xdfff {
			return false
		}
		s.pos += 6
		return true
	}
	return false
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape returns the text of a string str has read (in s.buf, valid
// until the next call).
func (s *fastScanner) unescape(raw []byte) []byte {
	b := s.buf[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, _ := hex4(raw[i+2:])
			if utf16.IsSurrogate(r) {
				low, _ := hex4(raw[i+8:])
				r = utf16.DecodeRune(r, low)
				i += 6
			}
			b = utf8.AppendRune(b, r)
			i += 4
		default: // '"', '\\', '/'
			b = append(b, raw[i+1])
		}
		i += 2
	}
	s.buf = b
	return b
}

// stringBytes reads a string and returns its text (in s.buf when it holds
// escapes).
func (s *fastScanner) stringBytes() ([]byte, bool) {
	raw, escaped, ok := s.str()
	if !ok {
		return nil, false
	}
	if escaped {
		return s.unescape(raw), true
	}
	return raw, true
}

// text reads a string as a Go string; the usual kind and apiVersion
// cost no allocation.
func (s *fastScanner) text() (string, bool) {
	b, ok := s.stringBytes()
	if !ok {
		return "", false
	}
	switch string(b) {
	case Kind:
		return Kind, true
	case "networking.istio.io/v1":
		return "networking.istio.io/v1", true
	case "networking.istio.io/v1beta1":
		return "networking.istio.io/v1beta1", true
	case "networking.istio.io/v1alpha3":
		return "networking.istio.io/v1alpha3", true
	}
	return string(b), true
}

// number reads a number as RFC 8259 spells it and returns its text.
func (s *fastScanner) number() ([]byte, bool) {
	start := s.pos
	s.consume('-')
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return nil, false
	}
	if s.consume('.') && !s.digits() {
		return nil, false
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if !s.consume('+') {
			s.consume('-')
		}
		if !s.digits() {
			return nil, false
		}
	}
	return s.data[start:s.pos], true
}

// digits skips decimal digits and reports whether there was one.
func (s *fastScanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// skipValue reads any value, refusing duplicate keys (compared as sent,
// so keys with escapes are refused too) at any depth.
func (s *fastScanner) skipValue(depth int) bool {
	if depth > fastMaxDepth {
		return false
	}
	switch s.peek() {
	case '{':
		outer := len(s.keys)
		ok := s.object(func(key []byte, escaped bool) bool {
			if escaped || len(s.keys)-outer >= fastMaxKeys {
				return false
			}
			for _, k := range s.keys[outer:] {
				if bytes.Equal(k, key) {
					return false
				}
			}
			s.keys = append(s.keys, key)
			return s.skipValue(depth + 1)
		})
		s.keys = s.keys[:outer]
		return ok
	case '[':
		return s.array(func() bool { return s.skipValue(depth + 1) })
	case '"':
		_, _, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	_, ok := s.number()
	return ok
}

// metadata reads the metadata object, taking only the fields of
// objectMetaField; encoding/json decodes it afterwards.
func (s *fastScanner) metadata() bool {
	var seen uint32
	return s.object(func(key []byte, escaped bool) bool {
		bit := objectMetaField(key)
		if escaped || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		if string(key) == "managedFields" {
			return s.managedFields()
		}
		if string(key) != "ownerReferences" || s.peek() != '[' {
			return s.skipValue(1)
		}
		// OwnerReference is a struct: its field names must be exact too.
		return s.array(func() bool {
			var seen uint32
			return s.object(func(key []byte, escaped bool) bool {
				bit := ownerReferenceField(key)
				if escaped || bit == 0 || seen&bit != 0 {
					return false
				}
				seen |= bit
				return s.skipValue(3)
			})
		})
	})
}

// managedFields reads metadata.managedFields. Entries whose field names
// are all exact and distinct are decoded from the bytes as sent (their
// fieldsV1 normalized afterwards); anything else sends the whole metadata
// through decode's own reading (metadataAsTree).
func (s *fastScanner) managedFields() bool {
	if s.peek() != '[' {
		s.metadataAsTree = true
		return s.skipValue(1)
	}
	return s.array(func() bool {
		if s.peek() != '{' {
			s.metadataAsTree = true
			return s.skipValue(2)
		}
		var seen uint32
		return s.object(func(key []byte, escaped bool) bool {
			bit := managedFieldsEntryField(key)
			if escaped || bit == 0 || seen&bit != 0 {
				s.metadataAsTree = true
			}
			seen |= bit
			return s.skipValue(3)
		})
	})
}

// managedFieldsEntryField is objectMetaField for metav1.ManagedFieldsEntry.
func managedFieldsEntryField(key []byte) uint32 {
	switch string(key) {
	case "manager":
		return 1 << 0
	case "operation":
		return 1 << 1
	case "apiVersion":
		return 1 << 2
	case "time":
		return 1 << 3
	case "fieldsType":
		return 1 << 4
	case "fieldsV1":
		return 1 << 5
	case "subresource":
		return 1 << 6
	}
	return 0
}

// message reads an object into m, as checkMessage and fillMessage would
// take it from the tree. depth counts the messages above m, as in
// fillMessage.
func (s *fastScanner) message(m protoreflect.Message, depth int) bool {
	if depth > fastMaxDepth {
		return false
	}
	md := m.Descriptor()
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return s.wellKnown(m, depth)
	}
	fields := md.Fields()
	var seen uint64 // by field index
	return s.object(func(key []byte, escaped bool) bool {
		if escaped {
			return false
		}
		fd := fieldByJSONName(fields, key)
		if fd == nil || fd.Index() >= 64 || seen&(1<<fd.Index()) != 0 {
			return false
		}
		seen |= 1 << fd.Index()
		if s.peek() == 'n' {
			// A null leaves the field unset, except where null is a value.
			return !isNullValue(fd) && s.literal("null")
		}
		switch {
		case fd.IsList():
			list := m.Mutable(fd).List()
			return s.array(func() bool {
				var msg protoreflect.Value
				if fd.Message() != nil {
					msg = list.NewElement()
				}
				val, ok := s.singular(msg, fd, depth)
				if ok {
					list.Append(val)
				}
				return ok
			})
		case fd.IsMap():
			return s.mapEntries(m.Mutable(fd).Map(), fd, depth)
		}
		// protojson refuses a second member of a oneof.
		if od := fd.ContainingOneof(); od != nil && m.WhichOneof(od) != nil {
			return false
		}
		var msg protoreflect.Value
		if fd.Message() != nil {
			msg = m.NewField(fd)
		}
		val, ok := s.singular(msg, fd, depth)
		if ok {
			m.Set(fd, val)
		}
		return ok
	})
}

// fieldByJSONName is fields.ByJSONName(key) for the exact JSON name only
// (as checkMessage), without turning key into a string.
func fieldByJSONName(fields protoreflect.FieldDescriptors, key []byte) protoreflect.FieldDescriptor {
	for i := 0; i < fields.Len(); i++ {
		if fd := fields.Get(i); fd.JSONName() == string(key) {
			return fd
		}
	}
	return nil
}

func (s *fastScanner) mapEntries(mp protoreflect.Map, fd protoreflect.FieldDescriptor, depth int) bool {
	keyKind, valueFd := fd.MapKey().Kind(), fd.MapValue()
	return s.object(func(key []byte, escaped bool) bool {
		if escaped {
			key = s.unescape(key)
		}
		k, ok := mapKey(keyKind, string(key))
		// Two keys may name the same entry ("1" and "01"); protojson
		// refuses that.
		if !ok || mp.Has(k) {
			return false
		}
		var msg protoreflect.Value
		if valueFd.Message() != nil {
			msg = mp.NewValue()
		}
		val, ok := s.singular(msg, valueFd, depth)
		if ok {
			mp.Set(k, val)
		}
		return ok
	})
}

// singular reads one field value, list entry or map value, as
// checkSingular and fill.go's singular would take it; msg is the new
// message to fill for the message kinds. A null is refused here: decode
// refuses it as a list entry and the fill as a map value.
func (s *fastScanner) singular(msg protoreflect.Value, fd protoreflect.FieldDescriptor, depth int) (protoreflect.Value, bool) {
	switch kind := fd.Kind(); kind {
	case protoreflect.MessageKind:
		return msg, s.message(msg.Message(), depth+1)
	case protoreflect.EnumKind:
		b, ok := s.stringBytes()
		if !ok {
			return protoreflect.Value{}, false
		}
		if ev := enumByName(fd.Enum(), b); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), true
		}
	case protoreflect.BoolKind:
		if s.literal("true") {
			return protoreflect.ValueOfBool(true), true
		}
		if s.literal("false") {
			return protoreflect.ValueOfBool(false), true
		}
	case protoreflect.StringKind:
		if b, ok := s.stringBytes(); ok {
			return protoreflect.ValueOfString(string(b)), true
		}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		// A number, as checkScalar wants, in the range of the field's
		// size, as protojson wants; strings ("NaN") are left to decode.
		text, ok := s.number()
		if !ok {
			return protoreflect.Value{}, false
		}
		if kind == protoreflect.FloatKind {
			if f, err := strconv.ParseFloat(string(text), 32); err == nil {
				return protoreflect.ValueOfFloat32(float32(f)), true
			}
		} else if f, err := strconv.ParseFloat(string(text), 64); err == nil {
			return protoreflect.ValueOfFloat64(f), true
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return s.integer(kind)
	}
	// Bytes (base64 is protojson's own), groups and all else.
	return protoreflect.Value{}, false
}

// enumByName is Values().ByName without turning name into a string.
func enumByName(ed protoreflect.EnumDescriptor, name []byte) protoreflect.EnumValueDescriptor {
	values := ed.Values()
	for i := 0; i < values.Len(); i++ {
		if ev := values.Get(i); string(ev.Name()) == string(name) {
			return ev
		}
	}
	return nil
}

// integer reads an integer of the kind in the plain form
// -?(0|[1-9][0-9]*), in range: a number, or for the 64-bit kinds also a
// string, as fill.go's integerText.
func (s *fastScanner) integer(kind protoreflect.Kind) (protoreflect.Value, bool) {
	var text []byte
	var ok bool
	if s.peek() == '"' {
		switch kind {
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
			protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			text, ok = s.stringBytes()
		}
	} else {
		text, ok = s.number()
	}
	if !ok {
		return protoreflect.Value{}, false
	}
	neg, n, ok := plainInteger(text)
	if !ok {
		return protoreflect.Value{}, false
	}
	switch kind {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if neg && n <= 1<<31 {
			return protoreflect.ValueOfInt32(int32(-int64(n))), true
		}
		if !neg && n <= 1<<31-1 {
			return protoreflect.ValueOfInt32(int32(n)), true
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if neg && n <= 1<<63 {
			return protoreflect.ValueOfInt64(int64(-n)), true
		}
		if !neg && n <= 1<<63-1 {
			return protoreflect.ValueOfInt64(int64(n)), true
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		// Not even -0: protojson refuses a sign on an unsigned field.
		if !neg && n <= 1<<32-1 {
			return protoreflect.ValueOfUint32(uint32(n)), true
		}
	default: // the unsigned 64-bit kinds
		if !neg {
			return protoreflect.ValueOfUint64(n), true
		}
	}
	return protoreflect.Value{}, false
}

// plainInteger parses -?(0|[1-9][0-9]*) into its sign and magnitude,
// refusing magnitudes beyond 64 bits.
func plainInteger(text []byte) (neg bool, n uint64, ok bool) {
	if len(text) > 0 && text[0] == '-' {
		neg, text = true, text[1:]
	}
	if len(text) == 0 || (text[0] == '0' && len(text) > 1) {
		return false, 0, false
	}
	for _, c := range text {
		if c < '0' || c > '9' {
			return false, 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return false, 0, false
		}
		n = n*10 + d
	}
	return neg, n, true
}

// wellKnown reads a google.protobuf message the way fillWellKnown does:
// protojson reads the value's bytes (here as sent, which for a single
// scalar token read the same as decode's re-written value), after the
// JSON type checkMessage wants. The others (Struct, Value, Any, ...) are
// left to decode.
func (s *fastScanner) wellKnown(m protoreflect.Message, depth int) bool {
	start := s.pos
	var ok bool
	switch m.Descriptor().FullName() {
	case "google.protobuf.Duration", "google.protobuf.Timestamp",
		"google.protobuf.StringValue", "google.protobuf.BytesValue":
		_, _, ok = s.str()
	case "google.protobuf.BoolValue":
		ok = s.literal("true") || s.literal("false")
	case "google.protobuf.Int32Value":
		_, ok = s.integer(protoreflect.Int32Kind)
	case "google.protobuf.UInt32Value":
		_, ok = s.integer(protoreflect.Uint32Kind)
	case "google.protobuf.Int64Value":
		_, ok = s.integer(protoreflect.Int64Kind)
	case "google.protobuf.UInt64Value":
		_, ok = s.integer(protoreflect.Uint64Kind)
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue":
		_, ok = s.number()
	}
	if !ok {
		return false
	}
	opts := protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: protowire.DefaultRecursionLimit - depth}
	return opts.Unmarshal(s.data[start:s.pos], m.Interface()) == nil
}
