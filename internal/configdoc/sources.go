package configdoc

import (
	"cmp"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hookline/hookline/internal/sources"
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
	"Config.Object":       {Default: "per type (docs/SOURCES.md); none for github, slack, standardwebhooks and hmac"},
	"Config.Time":         {Default: "per type (docs/SOURCES.md); the received time for github and hmac"},
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

// loadSourceFields lists the sources file's fields, from sources.File, the
// type that sources.ReadFile decodes.
func loadSourceFields(root string) ([]SourceField, error) {
	t := reflect.TypeFor[sources.File]()
	docs, err := packageDocs(root, t)
	if err != nil {
		return nil, err
	}
	var example yaml.Node
	if err := yaml.Unmarshal([]byte(exampleSources), &example); err != nil {
		return nil, fmt.Errorf("exampleSources: %w", err)
	}
	fields, err := sourceFields(t, "", docs, &example)
	if err != nil {
		return nil, err
	}
	for key := range sourceExtras {
		if !slices.ContainsFunc(fields, func(f SourceField) bool { return f.GoField == key }) {
			return nil, fmt.Errorf("sourceExtras names %s, which package sources no longer declares; remove the entry", key)
		}
	}
	return fields, nil
}

// sourceFields lists the fields of struct t and of the structs below it,
// depth first, each path prefixed; docs are packageDocs.
func sourceFields(t reflect.Type, prefix string, docs map[string]string, example *yaml.Node) ([]SourceField, error) {
	keys := map[string]string{} // Go field name -> `key`, for describe
	for _, f := range reflect.VisibleFields(t) {
		if key := yamlKey(f); key != "" {
			keys[f.Name] = "`" + key + "`"
		}
	}
	var out []SourceField
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() {
			continue
		}
		goField := t.Name() + "." + f.Name
		key := yamlKey(f)
		if key == "" {
			return nil, fmt.Errorf("%s has no yaml tag", goField)
		}
		path := prefix + key
		typ, elem, err := typeName(f.Type)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", goField, err)
		}
		text, _ := splitDoc(docs[goField])
		x := sourceExtras[goField]
		doc := describe(text, f.Name, keys)
		switch {
		case x.Doc != "" && doc != "":
			return nil, fmt.Errorf("%s now has a doc comment; remove sourceExtras[%q].Doc", goField, goField)
		case x.Doc != "":
			doc = x.Doc
		case doc == "":
			return nil, fmt.Errorf("%s is undocumented: give it a doc comment (or a sourceExtras Doc)", goField)
		}
		def := x.Default // else the first that the comment states
		for _, re := range []*regexp.Regexp{defaultSentenceRe, defaultMarkRe} {
			if m := re.FindStringSubmatch(text); def == "" && m != nil {
				def = m[1]
			}
		}
		sf := SourceField{
			Path: path, Type: typ, Default: def, Required: cmp.Or(x.Required, "no"), Doc: doc, GoField: goField,
			Example: exampleAt(example, path),
		}
		if sf.Example == "" {
			return nil, fmt.Errorf("exampleSources (internal/configdoc/example.go) sets no %s: add it, so the reference has an example, then run make docs", path)
		}
		out = append(out, sf)
		if elem != nil {
			sub := path + "."
			if typ == "list" {
				sub = path + "[]."
			}
			below, err := sourceFields(elem, sub, docs, example)
			if err != nil {
				return nil, err
			}
			out = append(out, below...)
		}
	}
	return out, nil
}

// yamlKey is the field's yaml key, or "" for none or "-".
func yamlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if key == "-" {
		return ""
	}
	return key
}

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

// flow renders n on one line. It restyles n in place, which is harmless:
// the example is parsed afresh by each Load, and only read through flow.
func flow(n *yaml.Node) string {
	setFlow(n)
	b, err := yaml.Marshal(n)
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
	for _, k := range n.Content {
		setFlow(k)
	}
}
