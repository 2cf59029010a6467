package configdoc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hookline/hookline"
)

// packageDocs returns the doc comments of the struct fields declared in the
// package of t, under root, keyed Type.Field. Reflection gives the fields
// but not their comments, so this is the one thing read from the structs'
// source.
func packageDocs(root string, t reflect.Type) (map[string]string, error) {
	// Package hookline is the module's root, so its path is the module's.
	module := reflect.TypeFor[hookline.ReceiverConfig]().PkgPath()
	rel, ok := strings.CutPrefix(t.PkgPath(), module)
	if !ok {
		return nil, fmt.Errorf("%s is not in module %s", t, module)
	}
	paths, err := filepath.Glob(filepath.Join(root, rel, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("list package %s: %w", t.PkgPath(), err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no Go files for package %s under %s", t.PkgPath(), root)
	}
	docs := map[string]string{}
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if st, ok := ts.Type.(*ast.StructType); ok {
					structDocs(fset, ts.Name.Name, st, docs)
				}
			}
		}
	}
	return docs, nil
}

// structDocs adds the doc comments of st's fields to docs.
func structDocs(fset *token.FileSet, typeName string, st *ast.StructType, docs map[string]string) {
	var prev *ast.Field
	for _, fld := range st.Fields.List {
		doc := fld.Doc.Text()
		// "ID and EventType override ...": a field with no comment of its
		// own, right below one whose comment names it, shares that comment.
		if doc == "" && prev != nil && prev.Doc != nil && len(fld.Names) == 1 &&
			fset.Position(fld.Pos()).Line == fset.Position(prev.End()).Line+1 &&
			regexp.MustCompile(`\b`+fld.Names[0].Name+`\b`).MatchString(prev.Doc.Text()) {
			doc = prev.Doc.Text()
		}
		for _, name := range fld.Names {
			docs[typeName+"."+name.Name] = doc
		}
		prev = fld
	}
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
			r, n := utf8.DecodeRuneInString(rest)
			doc = string(unicode.ToUpper(r)) + rest[n:]
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

// typeName names a field's type as a reader of the reference knows it; elem
// is the struct type to descend into, for a mapping or a list of them.
func typeName(t reflect.Type) (name string, elem reflect.Type, err error) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "duration", nil, nil
	case reflect.TypeFor[slog.Level]():
		return "log level", nil, nil
	case reflect.TypeFor[[]string]():
		return "list of strings", nil, nil
	}
	switch t.Kind() {
	case reflect.String:
		return "string", nil, nil
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "integer", nil, nil
	case reflect.Bool:
		return "bool", nil, nil
	case reflect.Float64:
		return "number", nil, nil
	case reflect.Struct:
		return "mapping", t, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "list", t.Elem(), nil
		}
	}
	return "", nil, fmt.Errorf("unsupported type %s: teach configdoc.typeName its name", t)
}
