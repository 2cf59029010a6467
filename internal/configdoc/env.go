package configdoc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// binaryFiles are the files of the root package that a binary runs, beside
// its cmd/ folder: its main is a thin call into package hookline.
var binaryFiles = map[string][]string{
	Receiver: {"receiver.go"},
	Worker:   {"worker.go", "worker_admin.go"},
}

// envStruct is a struct whose env tags declare a binary's variables.
type envStruct struct {
	binary, file, typeName string
}

// envStructs are the binaries' Config structs, loaded with internal/config.
var envStructs = []envStruct{
	{Receiver, "receiver.go", "ReceiverConfig"},
	{Worker, "worker.go", "WorkerConfig"},
}

// sourcesEnvFile and sourcesEnvFunc read the default sources' secrets: every
// literal in that function that looks like a variable name is one. A binary
// reads them if its package calls sources.Load or sources.FromEnv.
const (
	sourcesEnvFile = "internal/sources/build.go"
	sourcesEnvFunc = "FromEnv"
)

// extra describes a variable beyond what the code says: the description of
// one read outside a struct, or facts a tag cannot hold. Every entry must
// name a variable that the code reads (Load fails otherwise), and every
// variable read outside a struct must have a Doc here or in a struct.
type extra struct {
	Type, Doc, Example string
	// Secret values belong in a secret store.
	Secret bool
	// RequiredBy adds binaries that require the variable.
	RequiredBy []string
	// RequiredUnless is the variable whose presence makes it optional.
	RequiredUnless string
}

// extraEnv is the explicit part of the reference. Keep it small: anything
// a struct tag or doc comment can say belongs there instead.
var extraEnv = map[string]extra{
	"DATABASE_URL": {
		Secret: true, // it usually holds the password
		// hookctl's database commands fail without it.
		RequiredBy: []string{Hookctl},
	},
	"STRIPE_WEBHOOK_SECRET": {
		Type: "list",
		Doc: "The stripe source's endpoint signing secret(s) (whsec_…), comma-separated; a request passes if any one matches, " +
			"so list the new secret first during a rotation (new,old). Used only without HOOKLINE_SOURCES; " +
			"hookctl reads it for `sources` and `send`.",
		Example:        "STRIPE_WEBHOOK_SECRET_FILE=/run/secrets/stripe_webhook_secret",
		Secret:         true,
		RequiredBy:     []string{Receiver},
		RequiredUnless: "HOOKLINE_SOURCES",
	},
	"BANK_WEBHOOK_SECRET": {
		Type: "list",
		Doc: "The bank source's HMAC-SHA256 secret(s) (hex signature in X-Hmac-Signature), comma-separated, new first during a rotation. " +
			"Used only without HOOKLINE_SOURCES; hookctl reads it for `sources` and `send`.",
		Example:        "BANK_WEBHOOK_SECRET_FILE=/run/secrets/bank_webhook_secret",
		Secret:         true,
		RequiredBy:     []string{Receiver},
		RequiredUnless: "HOOKLINE_SOURCES",
	},
	"USER": {
		Type:    "string",
		Doc:     "Who an operator's change is recorded as (throttle, shed, pause, replay audit) unless --by is given; the OS user when unset.",
		Example: "USER=alice",
	},
	"RIVERUI_PASSWORD": {Secret: true},
	"RIVERUI_TOKEN":    {Secret: true},
}

var envNameRe = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Z]{2,}$`)

// envField is one variable as one binary reads it.
type envField struct {
	name, typ, def, doc, example, origin string
	required, fileForm, hasDoc           bool
}

// loadEnv builds the variables of the reference.
func loadEnv(root string) ([]EnvVar, error) {
	perBinary := map[string][]envField{}
	for _, s := range envStructs {
		_, f, err := parseFile(filepath.Join(root, s.file))
		if err != nil {
			return nil, err
		}
		fields, err := envStructFields(f, s.typeName, s.file)
		if err != nil {
			return nil, err
		}
		perBinary[s.binary] = append(perBinary[s.binary], fields...)
	}
	sourcesVars, err := funcEnvLiterals(root, sourcesEnvFile, sourcesEnvFunc)
	if err != nil {
		return nil, err
	}
	for _, bin := range Binaries {
		var calls []envField
		var usesSources bool
		for _, dir := range append([]string{filepath.Join("cmd", bin)}, binaryFiles[bin]...) {
			found, uses, err := scanPackage(root, dir)
			if err != nil {
				return nil, err
			}
			calls, usesSources = append(calls, found...), usesSources || uses
		}
		perBinary[bin] = append(perBinary[bin], calls...)
		if usesSources {
			for _, name := range sourcesVars {
				perBinary[bin] = append(perBinary[bin], envField{
					name: name, fileForm: true, origin: sourcesEnvFile + " " + sourcesEnvFunc,
				})
			}
		}
	}
	return merge(perBinary)
}

// merge folds each binary's view of a variable into one EnvVar.
func merge(perBinary map[string][]envField) ([]EnvVar, error) {
	byName := map[string]*EnvVar{}
	docs := map[string][][2]string{} // name -> (binary, doc)
	var order []string
	for _, bin := range Binaries {
		for _, f := range perBinary[bin] {
			v := byName[f.name]
			if v == nil {
				v = &EnvVar{Name: f.name}
				byName[f.name] = v
				order = append(order, f.name)
			}
			if !slices.Contains(v.Binaries, bin) {
				v.Binaries = append(v.Binaries, bin)
			}
			if f.fileForm && !slices.Contains(v.FileForm, bin) {
				v.FileForm = append(v.FileForm, bin)
			}
			if f.required && !slices.Contains(v.RequiredBy, bin) {
				v.RequiredBy = append(v.RequiredBy, bin)
			}
			if f.typ != "" {
				if v.Type != "" && v.Type != f.typ {
					return nil, fmt.Errorf("%s has type %s in one place and %s in %s", f.name, v.Type, f.typ, f.origin)
				}
				v.Type = f.typ
			}
			if f.def != "" {
				if v.Default != "" && v.Default != f.def {
					return nil, fmt.Errorf("%s defaults to %q in one place and %q in %s", f.name, v.Default, f.def, f.origin)
				}
				v.Default = f.def
			}
			if f.hasDoc {
				docs[f.name] = append(docs[f.name], [2]string{bin, f.doc})
			}
			if v.Example == "" {
				v.Example = f.example
			}
			v.Origins = append(v.Origins, f.origin)
		}
	}
	for name, x := range extraEnv {
		v := byName[name]
		if v == nil {
			return nil, fmt.Errorf("configdoc: extraEnv describes %s, which no configuration code reads any more; remove the entry", name)
		}
		v.Secret = x.Secret
		v.RequiredUnless = x.RequiredUnless
		for _, b := range x.RequiredBy {
			if !v.ReadBy(b) {
				return nil, fmt.Errorf("configdoc: extraEnv says %s requires %s, which it does not read", b, name)
			}
			if !slices.Contains(v.RequiredBy, b) {
				v.RequiredBy = append(v.RequiredBy, b)
			}
		}
		if x.Type != "" {
			v.Type = x.Type
		}
		if x.Doc != "" {
			if len(docs[name]) > 0 {
				return nil, fmt.Errorf("configdoc: %s has a doc comment in the code and a Doc in extraEnv; keep one", name)
			}
			docs[name] = [][2]string{{"", x.Doc}}
		}
		if x.Example != "" {
			v.Example = x.Example
		}
	}
	out := make([]EnvVar, 0, len(order))
	for _, name := range order {
		v := byName[name]
		v.Doc = mergeDocs(docs[name])
		sortBinaries(v.RequiredBy)
		v.Required = len(v.RequiredBy) == len(v.Binaries) && v.RequiredUnless == ""
		if v.Example == "" && v.Default != "" {
			v.Example = v.Default
		}
		switch {
		case v.Type == "":
			return nil, fmt.Errorf("configdoc: %s (read at %s) has no type: add it to extraEnv", name, strings.Join(v.Origins, ", "))
		case v.Doc == "":
			return nil, fmt.Errorf("configdoc: %s (read at %s) is undocumented: give its field a doc comment, or add it to extraEnv", name, strings.Join(v.Origins, ", "))
		case v.Example == "":
			return nil, fmt.Errorf("configdoc: %s (read at %s) has no default and no example: add a doc line \"Example: value\"", name, strings.Join(v.Origins, ", "))
		}
		if !strings.HasPrefix(v.Example, name+"=") && !strings.HasPrefix(v.Example, name+FileSuffix+"=") {
			v.Example = name + "=" + v.Example
		}
		out = append(out, *v)
	}
	sort.SliceStable(out, func(i, j int) bool { return groupRank(out[i].Binaries) < groupRank(out[j].Binaries) })
	return out, nil
}

// mergeDocs joins the binaries' descriptions of one variable: one if they
// agree, else each prefixed with its binary.
func mergeDocs(docs [][2]string) string {
	if len(docs) == 0 {
		return ""
	}
	same := true
	for _, d := range docs[1:] {
		same = same && d[1] == docs[0][1]
	}
	if same {
		return docs[0][1]
	}
	parts := make([]string, len(docs))
	for i, d := range docs {
		parts[i] = "**" + d[0] + ":** " + d[1]
	}
	return strings.Join(parts, " ")
}

// groupRank orders variables by who reads them: all binaries first, then
// pairs, then each binary's own, in the order of Binaries.
func groupRank(bins []string) int {
	mask := 0
	for _, b := range bins {
		mask |= 1 << slices.Index(Binaries, b)
	}
	// Fewer binaries rank later; among equals, earlier binaries first.
	return (len(Binaries)-len(bins))*(1<<len(Binaries)) + reverseBits(mask, len(Binaries))
}

func reverseBits(mask, n int) int {
	out := 0
	for i := range n {
		if mask&(1<<i) == 0 {
			out |= 1 << (n - 1 - i)
		}
	}
	return out
}

func sortBinaries(bins []string) {
	slices.SortFunc(bins, func(a, b string) int { return slices.Index(Binaries, a) - slices.Index(Binaries, b) })
}

func parseFile(path string) (*token.FileSet, *ast.File, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, nil, fmt.Errorf("configdoc: %w", err)
	}
	return fset, f, nil
}

// findStruct returns the struct type called name declared in f.
func findStruct(f *ast.File, name string) (*ast.StructType, error) {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, s := range gd.Specs {
			ts := s.(*ast.TypeSpec)
			if ts.Name.Name != name {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return nil, fmt.Errorf("configdoc: type %s is not a struct", name)
			}
			return st, nil
		}
	}
	return nil, fmt.Errorf("configdoc: no type %s", name)
}

// envStructFields reads the env-tagged fields of struct typeName in f, as
// internal/config loads them: each also as NAME_FILE.
func envStructFields(f *ast.File, typeName, file string) ([]envField, error) {
	st, err := findStruct(f, typeName)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	keys := map[string]string{}
	for _, fld := range st.Fields.List {
		if fld.Tag == nil || len(fld.Names) != 1 {
			continue
		}
		tag, err := strconv.Unquote(fld.Tag.Value)
		if err != nil {
			return nil, err
		}
		if key, _, _ := strings.Cut(reflect.StructTag(tag).Get("env"), ","); key != "" {
			keys[fld.Names[0].Name] = "`" + key + "`"
		}
	}
	var out []envField
	for _, fld := range st.Fields.List {
		if fld.Tag == nil {
			continue
		}
		tag, err := strconv.Unquote(fld.Tag.Value)
		if err != nil {
			return nil, err
		}
		envTag, ok := reflect.StructTag(tag).Lookup("env")
		if !ok || envTag == "-" { // "-": set in code, not from the environment
			continue
		}
		if len(fld.Names) != 1 {
			return nil, fmt.Errorf("configdoc: %s %s: declare one env field per line", file, typeName)
		}
		goName := fld.Names[0].Name
		name, opts, _ := strings.Cut(envTag, ",")
		if !envNameRe.MatchString(name) {
			return nil, fmt.Errorf("configdoc: %s %s.%s: env tag %q is not a variable name", file, typeName, goName, envTag)
		}
		typ, err := envType(fld.Type)
		if err != nil {
			return nil, fmt.Errorf("configdoc: %s %s.%s: %w", file, typeName, goName, err)
		}
		doc, example := splitDoc(fld.Doc.Text())
		out = append(out, envField{
			name:     name,
			typ:      typ,
			def:      reflect.StructTag(tag).Get("envDefault"),
			doc:      describe(doc, goName, keys),
			hasDoc:   doc != "",
			example:  example,
			required: slices.Contains(strings.Split(opts, ","), "required"),
			fileForm: true, // internal/config.Load
			origin:   fmt.Sprintf("%s %s.%s", file, typeName, goName),
		})
	}
	return out, nil
}

// envType names the type of an env field as a reader of the reference
// knows it.
func envType(e ast.Expr) (string, error) {
	switch t := e.(type) {
	case *ast.Ident:
		switch t.Name {
		case "string":
			return "string", nil
		case "int", "int32", "int64", "uint", "uint32", "uint64":
			return "integer", nil
		case "bool":
			return "bool", nil
		case "float64":
			return "number", nil
		}
	case *ast.SelectorExpr:
		switch types := exprString(t); types {
		case "time.Duration":
			return "duration", nil
		case "slog.Level":
			return "log level", nil
		}
	case *ast.ArrayType:
		if id, ok := t.Elt.(*ast.Ident); ok && id.Name == "string" && t.Len == nil {
			return "list", nil
		}
	}
	return "", fmt.Errorf("unsupported type %s: teach configdoc.envType its name", exprString(e))
}

func exprString(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.SelectorExpr:
		return exprString(t.X) + "." + t.Sel.Name
	case *ast.StarExpr:
		return "*" + exprString(t.X)
	case *ast.ArrayType:
		return "[]" + exprString(t.Elt)
	case *ast.MapType:
		return "map[" + exprString(t.Key) + "]" + exprString(t.Value)
	}
	return fmt.Sprintf("%T", e)
}

// splitDoc separates a doc comment's "Example: v" line from its text, and
// joins the text into one paragraph.
func splitDoc(doc string) (text, example string) {
	var lines []string
	for _, l := range strings.Split(doc, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "Example:"); ok {
			example = strings.Trim(strings.TrimSpace(v), "`")
			continue
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " "), example
}

// describe turns a Go field comment into reference prose: "Addr is the
// listen address" becomes "The listen address", and other mentions of the
// struct's Go field names become their keys (env names or yaml keys).
func describe(doc, goName string, keys map[string]string) string {
	if doc == "" {
		return ""
	}
	// Only prose reads well capitalised: "Algorithm is sha1, sha256 or
	// sha512" keeps its key rather than become "Sha1, sha256 or sha512".
	for _, verb := range []string{" is ", " are "} {
		rest, ok := strings.CutPrefix(doc, goName+verb)
		if !ok {
			continue
		}
		first, _, _ := strings.Cut(rest, " ")
		if slices.Contains(proseStarts, first) {
			doc = upperFirst(rest)
		}
		break
	}
	for g, k := range keys {
		doc = regexp.MustCompile(`\b`+regexp.QuoteMeta(g)+`\b`).ReplaceAllString(doc, k)
	}
	return doc
}

// proseStarts are the words after "Field is" that begin a description.
var proseStarts = []string{"the", "a", "an", "how", "when", "where", "what", "which", "who", "whether"}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// scanPackage finds, in the non-test Go files of dir, the variables read by
// literal name: getenv("X"), os.Getenv("X"), os.LookupEnv("X") (no X_FILE
// form), and config.Secrets(getenv, "X") or config.Value(getenv, "X") (with
// it). usesSources reports a call to sources.Load or sources.FromEnv.
func scanPackage(root, dir string) (fields []envField, usesSources bool, err error) {
	paths, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
	if strings.HasSuffix(dir, ".go") {
		paths, err = []string{filepath.Join(root, dir)}, nil
	}
	if err != nil {
		return nil, false, err
	}
	slices.Sort(paths)
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, false, err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return nil, false, fmt.Errorf("configdoc: %w", err)
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		found, uses := scanFile(fset, f, rel)
		fields = append(fields, found...)
		usesSources = usesSources || uses
	}
	return fields, usesSources, nil
}

// scanFile is scanPackage for one parsed file, named rel in origins.
func scanFile(fset *token.FileSet, f *ast.File, rel string) (fields []envField, usesSources bool) {
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fn := exprString(call.Fun)
		argIndex, fileForm := -1, false
		switch fn {
		case "getenv", "os.Getenv", "os.LookupEnv", "syscall.Getenv":
			argIndex = 0
		case "config.Secrets", "config.Value":
			argIndex, fileForm = 1, true
		case "sources.Load", "sources.FromEnv":
			usesSources = true
		}
		if argIndex < 0 || len(call.Args) <= argIndex {
			return true
		}
		lit, ok := call.Args[argIndex].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		name, err := strconv.Unquote(lit.Value)
		if err != nil || !envNameRe.MatchString(name) {
			return true
		}
		fields = append(fields, envField{
			name: name, fileForm: fileForm,
			origin: fmt.Sprintf("%s:%d", rel, fset.Position(lit.Pos()).Line),
		})
		return true
	})
	return fields, usesSources
}

// funcEnvLiterals returns the string literals in function fn of file that
// are variable names, in order, once each.
func funcEnvLiterals(root, file, fn string) ([]string, error) {
	_, f, err := parseFile(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn || fd.Recv != nil {
			continue
		}
		var names []string
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && envNameRe.MatchString(s) && !slices.Contains(names, s) {
					names = append(names, s)
				}
			}
			return true
		})
		if len(names) == 0 {
			return nil, fmt.Errorf("configdoc: %s %s names no variable any more; update configdoc", file, fn)
		}
		return names, nil
	}
	return nil, fmt.Errorf("configdoc: %s has no func %s; update configdoc", file, fn)
}
