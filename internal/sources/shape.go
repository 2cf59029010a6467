package sources

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The file's shape, which fields exist at each level and what kind of value
// each takes, is checked on the YAML nodes before they are decoded. The
// YAML library's own errors name Go types ("field tolerence not found in
// type sources.Config", "cannot unmarshal !!str into time.Duration") and
// echo the offending value, which may be a secret; these say where the
// mistake is as the file writes it, and what is wanted, in YAML's terms.

// shownKeyRe is a field name that an error may repeat: a misspelt key is
// short and plain, while a secret pasted as a key is not.
var shownKeyRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,39}$`)

// secretWords are keys that mean a secret was about to be written into the
// file itself.
var secretWords = []string{"value", "secret", "key", "password", "token"}

// shapeChecker collects every shape problem of one file.
type shapeChecker struct {
	problems []Problem
	// aliased holds the anchored nodes already checked, each as a value of
	// one type: an alias, or a mapping merged in with <<, is checked once,
	// not once per use, which keeps a file of merges of merges (a "billion
	// laughs") from taking forever.
	aliased map[aliased]bool
}

// aliased is a node checked as a value of one type.
type aliased struct {
	n *yaml.Node
	t reflect.Type
}

// once reports whether n, as a value of type t, is seen for the first time.
func (s *shapeChecker) once(n *yaml.Node, t reflect.Type) bool {
	if s.aliased[aliased{n, t}] {
		return false
	}
	if s.aliased == nil {
		s.aliased = map[aliased]bool{}
	}
	s.aliased[aliased{n, t}] = true
	return true
}

func (s *shapeChecker) add(n *yaml.Node, path, format string, args ...any) {
	s.problems = append(s.problems, Problem{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// check reports where n, at path, is not a value of Go type t. An empty
// value (null, or nothing after the colon) leaves the field unset, as the
// decoder does; Build says when one is required.
func (s *shapeChecker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		if n = resolve(n); !s.once(n, t) {
			return
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			s.add(n, path, "want %s, not %s", describe(t), found(n))
			return
		}
		s.mapping(n, t, path, map[string]int{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			s.add(n, path, "want %s, not %s", describe(t), found(n))
			return
		}
		for i, item := range n.Content {
			s.check(item, t.Elem(), itemPath(path, t.Elem(), i, item))
		}
	default:
		// The library decides what a scalar may be (5m for a duration, not
		// 300); only its verdict is kept, as its message echoes the value.
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			s.add(n, path, "want %s, not %s", describe(t), found(n))
		}
	}
}

// mapping checks each key of n against the fields of struct t. seen holds
// the keys set so far, with their lines, or is nil inside a mapping merged
// in with <<, whose keys the mapping's own may override.
func (s *shapeChecker) mapping(n *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	keys, types := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			for _, m := range mergedMappings(v) {
				if !s.once(m, t) {
					continue
				}
				if m.Kind != yaml.MappingNode {
					s.add(m, path, "<< merges in a mapping (an anchor such as *defaults), not %s", found(m))
					continue
				}
				s.mapping(m, t, path, nil)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			s.add(k, path, "a field name must be text, not %s", found(k))
			continue
		}
		f, ok := types[k.Value]
		if !ok {
			s.unknown(k, t, path, keys)
			continue
		}
		if seen != nil {
			if first, dup := seen[k.Value]; dup {
				s.add(k, path, "%q is set twice (first at line %d)", k.Value, first)
				continue
			}
			seen[k.Value] = k.Line
		}
		s.check(v, f, joinPath(path, k.Value))
	}
}

// unknown reports key k, which struct t has no field for, with the field
// meant when one is close.
func (s *shapeChecker) unknown(k *yaml.Node, t reflect.Type, path string, known []string) {
	what := "unknown field"
	if path == "" {
		what = "unknown top-level field"
	}
	if !shownKeyRe.MatchString(k.Value) || looksLikeSecret(k.Value) {
		s.add(k, path, "%s (its name is not shown, as it might be a secret)", what)
		return
	}
	switch guess := suggest(k.Value, known); {
	case t == reflect.TypeFor[SecretRef]() && slices.Contains(secretWords, strings.ToLower(k.Value)):
		s.add(k, path, "%s %q: a secret is never written in the sources file; set env to the variable that holds it, or file to its path", what, k.Value)
	case guess != "":
		s.add(k, path, "%s %q (did you mean %q?)", what, k.Value, guess)
	default:
		s.add(k, path, "%s %q (the fields here are %s)", what, k.Value, strings.Join(known, ", "))
	}
}

// yamlFields returns the yaml keys of struct t, in the order declared
// (which the documentation follows), and their Go types.
func yamlFields(t reflect.Type) ([]string, map[string]reflect.Type) {
	var keys []string
	types := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && key != "" && key != "-" {
			keys = append(keys, key)
			types[key] = f.Type
		}
	}
	return keys, types
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// itemPath names item i of the list at path: a source by its name, when
// it has a valid one, and anything else by its index.
func itemPath(path string, elem reflect.Type, i int, item *yaml.Node) string {
	if elem == reflect.TypeFor[Config]() {
		name := ""
		if _, v := lookup(item, "name"); v != nil && resolve(v).Kind == yaml.ScalarNode {
			name = resolve(v).Value
		}
		return sourcePath(name, i)
	}
	return fmt.Sprintf("%s[%d]", path, i)
}

// describe says what a value of Go type t is written as, in YAML's terms.
func describe(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "a duration such as 5m or 90s"
	case reflect.TypeFor[Config]():
		return "a source such as {name: stripe, type: stripe, secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]}"
	case reflect.TypeFor[SecretRef]():
		return "a mapping such as {label: current, env: STRIPE_WEBHOOK_SECRET} or {label: current, file: /run/secrets/stripe}"
	case reflect.TypeFor[Locator]():
		return "a mapping such as {header: X-Request-Id} or {json: data.id}"
	case reflect.TypeFor[HMACConfig]():
		return "a mapping such as {header: X-Signature, algorithm: sha256, encoding: hex}"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.String:
		return "text"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "a list such as [one, two]"
		}
		return "a list, each item " + describe(t.Elem())
	}
	return "a mapping"
}

// found says what kind of value n is, never what it holds: the value may
// be a secret in the wrong place.
func found(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return "text"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "true or false"
	}
	return "a single value"
}

// suggest returns the key in known that key most likely misspells, or ""
// when none is close: the same but for case, _ and -, or within about one
// edit in three letters.
func suggest(key string, known []string) string {
	norm := strings.NewReplacer("_", "", "-", "")
	key = strings.ToLower(key)
	best, bestDist := "", 0
	for _, k := range known {
		if norm.Replace(k) == norm.Replace(key) {
			return k
		}
		d := editDistance(key, k)
		if d <= max(1, min(len(key), len(k))/3) && (best == "" || d < bestDist) {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// the insertions, deletions, substitutions and swaps of neighbours that
// turn one into the other, the usual typing mistakes.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
