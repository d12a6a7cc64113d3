package oracle

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	networking "istio.io/api/networking/v1alpha3"
)

// IstioModulePath is the module whose sources the oracle reads test data from.
const IstioModulePath = "istio.io/istio"

// IstioModuleDir returns the directory of the istio.io/istio module this
// binary was built with: from the binary's build info and the module cache
// (GOMODCACHE, else `go env GOMODCACHE`), falling back to
// `go list -m -f {{.Dir}} istio.io/istio`.
func IstioModuleDir() (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path != IstioModulePath {
				continue
			}
			if d.Replace != nil {
				d = d.Replace
			}
			if filepath.IsAbs(d.Path) {
				return d.Path, nil
			}
			if cache := goModCache(); cache != "" {
				dir := filepath.Join(cache, d.Path+"@"+d.Version)
				if st, err := os.Stat(dir); err == nil && st.IsDir() {
					return dir, nil
				}
			}
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", IstioModulePath).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %v", IstioModulePath, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m %s: module not downloaded", IstioModulePath)
	}
	return dir, nil
}

func goModCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return ""
}

// SidecarCase is one case of Istio's TestValidateSidecar table.
type SidecarCase struct {
	Name    string
	Sidecar *networking.Sidecar
	Valid   bool
	Warning bool
}

// SkippedCase is a table case the interpreter could not turn into values.
type SkippedCase struct {
	Name   string
	Reason string
}

// IstioValidationTestFile is Istio's validation test file, relative to the
// module directory.
const IstioValidationTestFile = "pkg/config/validation/validation_test.go"

// LoadIstioSidecarCases reads TestValidateSidecar's table from Istio's
// pkg/config/validation/validation_test.go in the istio.io/istio module
// directory (IstioModuleDir) and interprets each case (LoadSidecarCases).
func LoadIstioSidecarCases() ([]SidecarCase, []SkippedCase, error) {
	dir, err := IstioModuleDir()
	if err != nil {
		return nil, nil, err
	}
	return LoadSidecarCases(filepath.Join(dir, IstioValidationTestFile))
}

// LoadSidecarCases parses the Go file at path with go/parser, finds the
// TestValidateSidecar function's table (the first composite literal of a
// slice of anonymous structs in it), and turns each row into a SidecarCase:
// the name and expectation fields are read by field name (a string field
// "name", a *Sidecar field, a bool field "valid", a bool field whose name
// starts with "warn"), positionally or keyed; the *Sidecar expression is
// interpreted with reflection over the Go types of the protobuf messages
// registered in the global proto registry (composite literals, &T{...},
// elided element types, slices, maps, enum constants and conversions,
// oneof wrappers, strings/numbers/bools/nil). A row that cannot be
// interpreted is returned in the skipped list with the reason, never
// dropped.
func LoadSidecarCases(path string) ([]SidecarCase, []SkippedCase, error) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, nil, err
	}
	in := newInterpreter(fset, file)
	var fn *ast.FuncDecl
	for _, d := range file.Decls {
		if f, ok := d.(*ast.FuncDecl); ok && f.Name.Name == "TestValidateSidecar" && f.Recv == nil {
			fn = f
		}
	}
	if fn == nil {
		return nil, nil, fmt.Errorf("%s: no func TestValidateSidecar", path)
	}
	var table *ast.CompositeLit
	var row *ast.StructType
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if table != nil {
			return false
		}
		if cl, ok := n.(*ast.CompositeLit); ok {
			if at, ok := cl.Type.(*ast.ArrayType); ok {
				if st, ok := at.Elt.(*ast.StructType); ok {
					table, row = cl, st
					return false
				}
			}
		}
		return true
	})
	if table == nil {
		return nil, nil, fmt.Errorf("%s: TestValidateSidecar has no table of structs", path)
	}

	var fields []string
	var fieldTypes []ast.Expr
	for _, f := range row.Fields.List {
		for _, n := range f.Names {
			fields = append(fields, n.Name)
			fieldTypes = append(fieldTypes, f.Type)
		}
	}
	roles := map[string]string{} // field -> name|in|valid|warn
	sidecarType := reflect.TypeOf(&networking.Sidecar{})
	for i, f := range fields {
		lf := strings.ToLower(f)
		switch {
		case lf == "name":
			roles[f] = "name"
		case lf == "valid":
			roles[f] = "valid"
		case strings.HasPrefix(lf, "warn"):
			roles[f] = "warn"
		default:
			if t, err := in.resolveType(fieldTypes[i]); err == nil && t == sidecarType {
				roles[f] = "in"
			}
		}
	}
	for _, want := range []string{"name", "in", "valid", "warn"} {
		found := false
		for _, r := range roles {
			found = found || r == want
		}
		if !found {
			return nil, nil, fmt.Errorf("%s: TestValidateSidecar table has no %q field (fields %v)", path, want, fields)
		}
	}

	var cases []SidecarCase
	var skipped []SkippedCase
	for idx, elt := range table.Elts {
		cl, ok := elt.(*ast.CompositeLit)
		if !ok {
			skipped = append(skipped, SkippedCase{Name: fmt.Sprintf("#%d", idx), Reason: "row is not a composite literal"})
			continue
		}
		byField := map[string]ast.Expr{}
		for i, e := range cl.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok {
				if id, ok := kv.Key.(*ast.Ident); ok {
					byField[id.Name] = kv.Value
				}
				continue
			}
			if i < len(fields) {
				byField[fields[i]] = e
			}
		}
		c := SidecarCase{Name: fmt.Sprintf("#%d", idx)}
		var problem string
		for f, role := range roles {
			e := byField[f]
			switch role {
			case "name":
				if e == nil {
					continue
				}
				v, err := in.eval(e, reflect.TypeOf(""))
				if err != nil {
					problem = "name: " + err.Error()
					continue
				}
				c.Name = v.String()
			case "valid", "warn":
				b := false
				if e != nil {
					v, err := in.eval(e, reflect.TypeOf(false))
					if err != nil {
						problem = role + ": " + err.Error()
						continue
					}
					b = v.Bool()
				}
				if role == "valid" {
					c.Valid = b
				} else {
					c.Warning = b
				}
			case "in":
				if e == nil {
					continue
				}
				v, err := in.eval(e, sidecarType)
				if err != nil {
					problem = "input: " + err.Error()
					continue
				}
				if !v.IsNil() {
					c.Sidecar = v.Interface().(*networking.Sidecar)
				}
			}
		}
		if problem != "" {
			skipped = append(skipped, SkippedCase{Name: c.Name, Reason: problem})
			continue
		}
		cases = append(cases, c)
	}
	return cases, skipped, nil
}

// goTypes indexes the Go types of every registered protobuf message, enum
// and oneof wrapper by Go import path and Go name, and enum constants by
// their Go names.
type goTypes struct {
	types  map[string]map[string]reflect.Type  // pkg path -> name -> type
	consts map[string]map[string]reflect.Value // pkg path -> const name -> value
}

var (
	typeIndexOnce sync.Once
	typeIndex     *goTypes
)

func protoGoTypes() *goTypes {
	typeIndexOnce.Do(func() {
		g := &goTypes{types: map[string]map[string]reflect.Type{}, consts: map[string]map[string]reflect.Value{}}
		add := func(t reflect.Type) {
			if g.types[t.PkgPath()] == nil {
				g.types[t.PkgPath()] = map[string]reflect.Type{}
			}
			g.types[t.PkgPath()][t.Name()] = t
		}
		protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
			msg := mt.New()
			pt := reflect.TypeOf(msg.Interface())
			if pt.Kind() != reflect.Pointer || pt.Elem().Kind() != reflect.Struct {
				return true
			}
			add(pt.Elem())
			// Oneof wrappers: set each oneof field and look at the Go
			// type stored in the interface field.
			fields := mt.Descriptor().Fields()
			for i := 0; i < fields.Len(); i++ {
				fd := fields.Get(i)
				od := fd.ContainingOneof()
				if od == nil || od.IsSynthetic() {
					continue
				}
				m := mt.New()
				m.Set(fd, m.NewField(fd))
				sv := reflect.ValueOf(m.Interface()).Elem()
				for j := 0; j < sv.NumField(); j++ {
					if sv.Type().Field(j).Tag.Get("protobuf_oneof") != string(od.Name()) {
						continue
					}
					if w := sv.Field(j); !w.IsNil() {
						add(w.Elem().Type().Elem())
					}
				}
			}
			return true
		})
		protoregistry.GlobalTypes.RangeEnums(func(et protoreflect.EnumType) bool {
			t := reflect.TypeOf(et.New(0))
			if t.Name() == "" {
				return true
			}
			add(t)
			ed := et.Descriptor()
			prefix := t.Name() + "_"
			if _, nested := ed.Parent().(protoreflect.MessageDescriptor); nested {
				prefix = strings.TrimSuffix(t.Name(), string(ed.Name()))
			}
			if g.consts[t.PkgPath()] == nil {
				g.consts[t.PkgPath()] = map[string]reflect.Value{}
			}
			vals := ed.Values()
			for i := 0; i < vals.Len(); i++ {
				v := vals.Get(i)
				g.consts[t.PkgPath()][prefix+string(v.Name())] = reflect.ValueOf(et.New(v.Number()))
			}
			return true
		})
		typeIndex = g
	})
	return typeIndex
}

var basicTypes = map[string]reflect.Type{
	"string": reflect.TypeOf(""), "bool": reflect.TypeOf(false),
	"int": reflect.TypeOf(int(0)), "int32": reflect.TypeOf(int32(0)), "int64": reflect.TypeOf(int64(0)),
	"uint": reflect.TypeOf(uint(0)), "uint32": reflect.TypeOf(uint32(0)), "uint64": reflect.TypeOf(uint64(0)),
	"float32": reflect.TypeOf(float32(0)), "float64": reflect.TypeOf(float64(0)),
	"byte": reflect.TypeOf(byte(0)),
}

// interpreter evaluates expressions of one file.
type interpreter struct {
	fset    *token.FileSet
	imports map[string]string // alias -> import path
	types   *goTypes
}

func newInterpreter(fset *token.FileSet, file *ast.File) *interpreter {
	in := &interpreter{fset: fset, imports: map[string]string{}, types: protoGoTypes()}
	for _, im := range file.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		alias := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			alias = im.Name.Name
		}
		in.imports[alias] = p
	}
	return in
}

func (in *interpreter) errorf(n ast.Node, format string, a ...any) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, format, a...)
	p := in.fset.Position(n.Pos())
	return fmt.Errorf("%s (line %d)", b.String(), p.Line)
}

func (in *interpreter) resolveType(e ast.Expr) (reflect.Type, error) {
	switch t := e.(type) {
	case *ast.Ident:
		if bt, ok := basicTypes[t.Name]; ok {
			return bt, nil
		}
		return nil, in.errorf(t, "unknown type %s", t.Name)
	case *ast.SelectorExpr:
		x, ok := t.X.(*ast.Ident)
		if !ok {
			return nil, in.errorf(t, "unsupported type expression")
		}
		path, ok := in.imports[x.Name]
		if !ok {
			return nil, in.errorf(t, "unknown package %s", x.Name)
		}
		if rt, ok := in.types.types[path][t.Sel.Name]; ok {
			return rt, nil
		}
		return nil, in.errorf(t, "unknown type %s.%s", x.Name, t.Sel.Name)
	case *ast.StarExpr:
		et, err := in.resolveType(t.X)
		if err != nil {
			return nil, err
		}
		return reflect.PointerTo(et), nil
	case *ast.ArrayType:
		if t.Len != nil {
			return nil, in.errorf(t, "arrays are not supported")
		}
		et, err := in.resolveType(t.Elt)
		if err != nil {
			return nil, err
		}
		return reflect.SliceOf(et), nil
	case *ast.MapType:
		kt, err := in.resolveType(t.Key)
		if err != nil {
			return nil, err
		}
		vt, err := in.resolveType(t.Value)
		if err != nil {
			return nil, err
		}
		return reflect.MapOf(kt, vt), nil
	case *ast.ParenExpr:
		return in.resolveType(t.X)
	}
	return nil, in.errorf(e, "unsupported type expression %T", e)
}

// assign converts v to want where Go would (assignability, or the implicit
// conversion of an untyped constant).
func (in *interpreter) assign(n ast.Node, v reflect.Value, want reflect.Type) (reflect.Value, error) {
	if want == nil || v.Type() == want {
		return v, nil
	}
	if v.Type().AssignableTo(want) {
		out := reflect.New(want).Elem()
		out.Set(v)
		return out, nil
	}
	return reflect.Value{}, in.errorf(n, "cannot use %s as %s", v.Type(), want)
}

func (in *interpreter) eval(e ast.Expr, want reflect.Type) (reflect.Value, error) {
	switch x := e.(type) {
	case *ast.ParenExpr:
		return in.eval(x.X, want)
	case *ast.BasicLit:
		return in.literal(x, want, false)
	case *ast.UnaryExpr:
		switch x.Op {
		case token.AND:
			cl, ok := x.X.(*ast.CompositeLit)
			if !ok {
				return reflect.Value{}, in.errorf(x, "& of a non-literal")
			}
			var elem reflect.Type
			if want != nil && want.Kind() == reflect.Pointer {
				elem = want.Elem()
			}
			v, err := in.composite(cl, elem)
			if err != nil {
				return reflect.Value{}, err
			}
			p := reflect.New(v.Type())
			p.Elem().Set(v)
			return in.assign(x, p, want)
		case token.SUB:
			if lit, ok := x.X.(*ast.BasicLit); ok {
				return in.literal(lit, want, true)
			}
		}
		return reflect.Value{}, in.errorf(x, "unsupported unary %s", x.Op)
	case *ast.Ident:
		switch x.Name {
		case "true", "false":
			return in.assign(x, reflect.ValueOf(x.Name == "true"), want)
		case "nil":
			if want == nil {
				return reflect.Value{}, in.errorf(x, "untyped nil")
			}
			switch want.Kind() {
			case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
				return reflect.Zero(want), nil
			}
			return reflect.Value{}, in.errorf(x, "nil as %s", want)
		}
		return reflect.Value{}, in.errorf(x, "identifier %s is not a constant the interpreter knows", x.Name)
	case *ast.SelectorExpr:
		pkg, ok := x.X.(*ast.Ident)
		if !ok {
			return reflect.Value{}, in.errorf(x, "unsupported selector")
		}
		path := in.imports[pkg.Name]
		if c, ok := in.types.consts[path][x.Sel.Name]; ok {
			return in.assign(x, c, want)
		}
		return reflect.Value{}, in.errorf(x, "unknown constant %s.%s", pkg.Name, x.Sel.Name)
	case *ast.CompositeLit:
		v, err := in.composite(x, want)
		if err != nil {
			return reflect.Value{}, err
		}
		return in.assign(x, v, want)
	case *ast.CallExpr:
		// Only conversions T(x) are interpreted.
		t, err := in.resolveType(x.Fun)
		if err != nil || len(x.Args) != 1 {
			return reflect.Value{}, in.errorf(x, "unsupported call %s", in.source(x.Fun))
		}
		v, err := in.eval(x.Args[0], t)
		if err != nil {
			return reflect.Value{}, err
		}
		return in.assign(x, v.Convert(t), want)
	case *ast.BinaryExpr:
		if x.Op == token.ADD {
			l, err := in.eval(x.X, want)
			if err != nil {
				return reflect.Value{}, err
			}
			r, err := in.eval(x.Y, want)
			if err != nil {
				return reflect.Value{}, err
			}
			if l.Kind() == reflect.String && r.Kind() == reflect.String {
				return reflect.ValueOf(l.String() + r.String()).Convert(l.Type()), nil
			}
		}
		return reflect.Value{}, in.errorf(x, "unsupported binary %s", x.Op)
	}
	return reflect.Value{}, in.errorf(e, "unsupported expression %T", e)
}

func (in *interpreter) source(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return in.source(x.X) + "." + x.Sel.Name
	}
	return fmt.Sprintf("%T", e)
}

func (in *interpreter) literal(lit *ast.BasicLit, want reflect.Type, negate bool) (reflect.Value, error) {
	switch lit.Kind {
	case token.STRING:
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return reflect.Value{}, in.errorf(lit, "%v", err)
		}
		if want == nil || want.Kind() == reflect.Interface {
			return reflect.ValueOf(s), nil
		}
		if want.Kind() != reflect.String {
			return reflect.Value{}, in.errorf(lit, "string as %s", want)
		}
		return reflect.ValueOf(s).Convert(want), nil
	case token.INT, token.FLOAT:
		text := lit.Value
		if negate {
			text = "-" + text
		}
		if want == nil || want.Kind() == reflect.Interface {
			want = reflect.TypeOf(int(0))
			if lit.Kind == token.FLOAT {
				want = reflect.TypeOf(float64(0))
			}
		}
		out := reflect.New(want).Elem()
		switch want.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(text, 0, want.Bits())
			if err != nil {
				return reflect.Value{}, in.errorf(lit, "%v", err)
			}
			out.SetInt(n)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			n, err := strconv.ParseUint(text, 0, want.Bits())
			if err != nil {
				return reflect.Value{}, in.errorf(lit, "%v", err)
			}
			out.SetUint(n)
		case reflect.Float32, reflect.Float64:
			f, err := strconv.ParseFloat(text, want.Bits())
			if err != nil {
				return reflect.Value{}, in.errorf(lit, "%v", err)
			}
			out.SetFloat(f)
		default:
			return reflect.Value{}, in.errorf(lit, "number as %s", want)
		}
		return out, nil
	}
	return reflect.Value{}, in.errorf(lit, "unsupported literal %s", lit.Value)
}

// composite evaluates a composite literal; want is the type its elided type
// stands for (for an elided *T element, want is *T and the result is a T
// whose address eval's caller takes).
func (in *interpreter) composite(cl *ast.CompositeLit, want reflect.Type) (reflect.Value, error) {
	t := want
	if cl.Type != nil {
		rt, err := in.resolveType(cl.Type)
		if err != nil {
			return reflect.Value{}, err
		}
		t = rt
	}
	if t == nil {
		return reflect.Value{}, in.errorf(cl, "composite literal of unknown type")
	}
	if t.Kind() == reflect.Pointer && cl.Type == nil {
		// Elided &T{...} inside a slice or map literal.
		v, err := in.composite(cl, t.Elem())
		if err != nil {
			return reflect.Value{}, err
		}
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		return p, nil
	}
	switch t.Kind() {
	case reflect.Struct:
		out := reflect.New(t).Elem()
		for _, e := range cl.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				return reflect.Value{}, in.errorf(e, "positional fields in %s", t)
			}
			key, ok := kv.Key.(*ast.Ident)
			if !ok {
				return reflect.Value{}, in.errorf(kv, "field key is not an identifier")
			}
			f, ok := t.FieldByName(key.Name)
			if !ok || !f.IsExported() {
				return reflect.Value{}, in.errorf(kv, "%s has no field %s", t, key.Name)
			}
			v, err := in.eval(kv.Value, f.Type)
			if err != nil {
				return reflect.Value{}, err
			}
			out.FieldByIndex(f.Index).Set(v)
		}
		return out, nil
	case reflect.Slice:
		out := reflect.MakeSlice(t, 0, len(cl.Elts))
		for _, e := range cl.Elts {
			if _, ok := e.(*ast.KeyValueExpr); ok {
				return reflect.Value{}, in.errorf(e, "indexed slice literal")
			}
			v, err := in.eval(e, t.Elem())
			if err != nil {
				return reflect.Value{}, err
			}
			out = reflect.Append(out, v)
		}
		return out, nil
	case reflect.Map:
		out := reflect.MakeMapWithSize(t, len(cl.Elts))
		for _, e := range cl.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				return reflect.Value{}, in.errorf(e, "map element without key")
			}
			k, err := in.eval(kv.Key, t.Key())
			if err != nil {
				return reflect.Value{}, err
			}
			v, err := in.eval(kv.Value, t.Elem())
			if err != nil {
				return reflect.Value{}, err
			}
			out.SetMapIndex(k, v)
		}
		return out, nil
	}
	return reflect.Value{}, in.errorf(cl, "composite literal of kind %s", t.Kind())
}
