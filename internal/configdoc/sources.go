package configdoc

import (
	"fmt"
	"go/ast"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sourcesFile declares the sources file, from type sourcesRoot down.
const (
	sourcesFile = "internal/sources/config.go"
	sourcesRoot = "File"
)

// fieldExtra says what a sources field's doc comment does not: whether it is
// required, a default the comment does not state, and a description for a
// field that has no comment. Keyed by Go field (Type.Field); each key must
// exist, and Doc only where the code has no comment (Load checks both).
type fieldExtra struct {
	Required, Default, Doc string
}

var sourceExtras = map[string]fieldExtra{
	"File.Sources":        {Required: "yes", Doc: "The list of sources. A sources file replaces the stripe and bank sources of STRIPE_WEBHOOK_SECRET and BANK_WEBHOOK_SECRET; declare them in the file too to keep them."},
	"Config.Name":         {Required: "yes"},
	"Config.Type":         {Required: "yes"},
	"Config.Secrets":      {Required: "yes, at least one"},
	"Config.Livemode":     {Default: "unset (not checked)"},
	"Config.ID":           {Default: "per type (docs/SOURCES.md)"},
	"Config.EventType":    {Default: "per type (docs/SOURCES.md)"},
	"Config.MaxBodyBytes": {Default: "MAX_BODY_BYTES"},
	"SecretRef.Label":     {Required: "yes"},
	"SecretRef.Env":       {Required: "exactly one of env and file"},
	"SecretRef.File":      {Required: "exactly one of env and file"},
	"Locator.Header":      {Required: "exactly one of header and json", Doc: "The request header that holds the value."},
	"Locator.JSON":        {Required: "exactly one of header and json", Doc: "A gjson path into the JSON body, such as data.id."},
	"HMACConfig.Header":   {Required: "yes, when hmac is set", Default: "X-Hmac-Signature, when hmac is omitted"},
	"HMACConfig.Template": {Default: "{body}, or {timestamp}.{body} with timestamp_header"},
}

var (
	defaultSentenceRe = regexp.MustCompile(`Default ([^\s.]+)\.`)
	defaultMarkRe     = regexp.MustCompile(`([\w.-]+) \(default\)`)
)

// loadSourceFields walks the sources file's types from sourcesRoot.
func loadSourceFields(root string) ([]SourceField, error) {
	fset, f, err := parseFile(filepath.Join(root, sourcesFile))
	if err != nil {
		return nil, err
	}
	var example yaml.Node
	if err := yaml.Unmarshal([]byte(exampleSources), &example); err != nil {
		return nil, fmt.Errorf("configdoc: exampleSources: %w", err)
	}
	w := sourceWalker{fset: fset, file: f, example: &example, used: map[string]bool{}}
	if err := w.walk(sourcesRoot, "", 0); err != nil {
		return nil, err
	}
	for key := range sourceExtras {
		if !w.used[key] {
			return nil, fmt.Errorf("configdoc: sourceExtras names %s, which %s no longer declares; remove the entry", key, sourcesFile)
		}
	}
	return w.out, nil
}

type sourceWalker struct {
	fset    *token.FileSet
	file    *ast.File
	example *yaml.Node
	used    map[string]bool
	out     []SourceField
}

// walk appends the fields of struct typeName, each path prefixed.
func (w *sourceWalker) walk(typeName, prefix string, depth int) error {
	if depth > 8 {
		return fmt.Errorf("configdoc: %s nests too deep at %s", sourcesFile, prefix)
	}
	st, err := findStruct(w.file, typeName)
	if err != nil {
		return fmt.Errorf("%s: %w", sourcesFile, err)
	}
	keys := map[string]string{}
	for _, fld := range st.Fields.List {
		if key := yamlKey(fld); key != "" {
			keys[fld.Names[0].Name] = "`" + key + "`"
		}
	}
	var prev *ast.Field
	for _, fld := range st.Fields.List {
		if len(fld.Names) != 1 || !fld.Names[0].IsExported() {
			prev = nil
			continue
		}
		goName := fld.Names[0].Name
		goField := typeName + "." + goName
		key := yamlKey(fld)
		if key == "" {
			return fmt.Errorf("configdoc: %s %s has no yaml tag", sourcesFile, goField)
		}
		path := prefix + key
		typ, elem, err := yamlType(fld.Type)
		if err != nil {
			return fmt.Errorf("configdoc: %s %s: %w", sourcesFile, goField, err)
		}
		raw := fld.Doc.Text()
		// "ID and EventType override ...": a field with no comment of its
		// own, right below one whose comment names it, shares that comment.
		if raw == "" && prev != nil && prev.Doc != nil &&
			w.line(fld.Pos()) == w.line(prev.End())+1 &&
			regexp.MustCompile(`\b`+goName+`\b`).MatchString(prev.Doc.Text()) {
			raw = prev.Doc.Text()
		}
		text, _ := splitDoc(raw)
		x, hasExtra := sourceExtras[goField]
		w.used[goField] = hasExtra
		doc := describe(text, goName, keys)
		switch {
		case hasExtra && x.Doc != "" && doc != "":
			return fmt.Errorf("configdoc: %s now has a doc comment; remove sourceExtras[%q].Doc", goField, goField)
		case hasExtra && x.Doc != "":
			doc = x.Doc
		case doc == "":
			return fmt.Errorf("configdoc: %s %s is undocumented: give it a doc comment (or a sourceExtras Doc)", sourcesFile, goField)
		}
		def := x.Default
		if def == "" {
			if m := defaultSentenceRe.FindStringSubmatch(text); m != nil {
				def = m[1]
			} else if m := defaultMarkRe.FindStringSubmatch(text); m != nil {
				def = m[1]
			}
		}
		required := x.Required
		if required == "" {
			required = "no"
		}
		sf := SourceField{
			Path: path, Type: typ, Default: def, Required: required, Doc: doc, GoField: goField,
			Example: exampleAt(w.example, path),
		}
		if sf.Example == "" {
			return fmt.Errorf("configdoc: exampleSources (internal/configdoc/example.go) sets no %s: add it, so the reference has an example, then run make docs", path)
		}
		w.out = append(w.out, sf)
		if elem != "" {
			sub := path + "."
			if typ == "list" {
				sub = path + "[]."
			}
			if err := w.walk(elem, sub, depth+1); err != nil {
				return err
			}
		}
		prev = fld
	}
	return nil
}

func (w *sourceWalker) line(p token.Pos) int { return w.fset.Position(p).Line }

// yamlKey is the field's yaml key, or "" for none or "-".
func yamlKey(fld *ast.Field) string {
	if fld.Tag == nil || len(fld.Names) != 1 {
		return ""
	}
	tag, err := strconv.Unquote(fld.Tag.Value)
	if err != nil {
		return ""
	}
	key, _, _ := strings.Cut(reflect.StructTag(tag).Get("yaml"), ",")
	if key == "-" {
		return ""
	}
	return key
}

// yamlType names a sources field's YAML type; elem is the struct type to
// descend into for lists and mappings of structs.
func yamlType(e ast.Expr) (typ, elem string, err error) {
	switch t := e.(type) {
	case *ast.StarExpr:
		return yamlType(t.X)
	case *ast.ArrayType:
		if t.Len != nil {
			break
		}
		switch el := t.Elt.(type) {
		case *ast.Ident:
			if el.Name == "string" {
				return "list of strings", "", nil
			}
			if isUpper(el.Name) {
				return "list", el.Name, nil
			}
		}
	case *ast.Ident:
		switch t.Name {
		case "string":
			return "string", "", nil
		case "int", "int32", "int64":
			return "integer", "", nil
		case "bool":
			return "bool", "", nil
		}
		if isUpper(t.Name) {
			return "mapping", t.Name, nil
		}
	case *ast.SelectorExpr:
		if exprString(t) == "time.Duration" {
			return "duration", "", nil
		}
	}
	return "", "", fmt.Errorf("unsupported type %s: teach configdoc.yamlType its name", exprString(e))
}

func isUpper(s string) bool { return s != "" && s[0] >= 'A' && s[0] <= 'Z' }

// exampleAt returns the value at path (such as sources[].hmac.header) in
// the example: the first one found, in YAML flow form.
func exampleAt(doc *yaml.Node, path string) string {
	nodes := []*yaml.Node{doc}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		nodes = []*yaml.Node{doc.Content[0]}
	}
	for _, seg := range strings.Split(path, ".") {
		key, isList := strings.CutSuffix(seg, "[]")
		var next []*yaml.Node
		for _, n := range nodes {
			if n.Kind != yaml.MappingNode {
				continue
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value != key {
					continue
				}
				v := n.Content[i+1]
				if isList {
					if v.Kind == yaml.SequenceNode {
						next = append(next, v.Content...)
					}
				} else {
					next = append(next, v)
				}
			}
		}
		nodes = next
	}
	if len(nodes) == 0 {
		return ""
	}
	return flow(nodes[0])
}

// flow renders n on one line.
func flow(n *yaml.Node) string {
	c := *n
	setFlow(&c)
	b, err := yaml.Marshal(&c)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
	}
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	kids := make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		cp := *k
		setFlow(&cp)
		kids[i] = &cp
	}
	n.Content = kids
}
