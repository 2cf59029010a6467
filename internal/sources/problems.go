package sources

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrConfig is matched by every configuration error.
var ErrConfig = errors.New("invalid source configuration")

// maxShown bounds the problems an Error prints: a file that is not a
// sources file at all (a Kubernetes manifest, say) could otherwise fill a
// screen with what is, in the end, one mistake.
const maxShown = 20

// Problem is one mistake in the sources, placed as the file writes it.
type Problem struct {
	// Line is the line of the sources file, from 1, or 0 when it is not
	// known: sources from the environment, or a syntax error the YAML
	// library does not place.
	Line int
	// Path is where the mistake is, in the file's terms:
	// sources.stripe.tolerance for the source named stripe, sources[2]
	// for the third when it has no usable name, and empty for the file as
	// a whole.
	Path string
	// Msg says what is wrong and what is wanted. It never holds a secret.
	Msg string
}

// String is the problem on one line: "line 4: sources.stripe: unknown
// field …".
func (p Problem) String() string {
	s := p.Msg
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	if p.Line > 0 {
		s = "line " + strconv.Itoa(p.Line) + ": " + s
	}
	return s
}

// Error is every problem found in the sources, in file order. The file's
// shape (unknown fields, values of the wrong kind, keys set twice) is
// checked as a whole, so all of its problems come at once; once the shape
// is right, each source's first problem with its values is reported, for
// every source. It matches ErrConfig.
type Error struct {
	// Problems are in the order of the file, and never empty.
	Problems []Problem
}

// Error prints one problem on one line, and several one to a line under a
// count, so that a caller's prefix (HOOKLINE_SOURCES=path: ) heads them all.
func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for i, p := range e.Problems {
		if i == maxShown {
			fmt.Fprintf(&b, "\n  and %d more", len(e.Problems)-maxShown)
			break
		}
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// Is makes every Error match ErrConfig.
func (e *Error) Is(target error) bool { return target == ErrConfig }

// errorOf returns the problems as an error, or nil for none.
func errorOf(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	return &Error{Problems: problems}
}

// sourcePath names the source at index i of the sources list: by its name
// when it has a valid one, as the operator thinks of it, else by index.
func sourcePath(name string, i int) string {
	if nameRe.MatchString(name) {
		return "sources." + name
	}
	return fmt.Sprintf("sources[%d]", i)
}

// fieldError is the problem with field (such as secrets[1].label) of the
// source c at index i, placed on the field's line when c came from a file.
func fieldError(c Config, i int, field, format string, args ...any) error {
	return &Error{Problems: []Problem{{Line: lineOf(c.node, field), Path: sourcePath(c.Name, i) + "." + field, Msg: fmt.Sprintf(format, args...)}}}
}

// lineOf returns the line of field (such as secrets[1].label) under the
// mapping n: the key's line for a field, the item's for a list entry. It
// falls back on the nearest enclosing node that is there, as a missing
// field is best looked for where it should have been; 0 if n is nil.
func lineOf(n *yaml.Node, field string) int {
	if n == nil {
		return 0
	}
	line := n.Line
	for seg := range strings.SplitSeq(strings.ReplaceAll(field, "[", ".["), ".") {
		n = resolve(n)
		if idx, ok := strings.CutPrefix(seg, "["); ok {
			j, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			if err != nil || n.Kind != yaml.SequenceNode || j >= len(n.Content) {
				return line
			}
			n = n.Content[j]
			line = n.Line
			continue
		}
		k, v := lookup(n, seg)
		if k == nil {
			return line
		}
		n, line = v, k.Line
	}
	return line
}

// lookup returns the key and value nodes of key in mapping n, or nils. A
// key set directly wins over one merged in with <<, as YAML specifies.
func lookup(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n = resolve(n); n.Kind != yaml.MappingNode {
		return nil, nil
	}
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i]; {
		case isMerge(k):
			merged = append(merged, mergedMappings(n.Content[i+1])...)
		case k.Kind == yaml.ScalarNode && k.Value == key:
			return k, n.Content[i+1]
		}
	}
	for _, m := range merged {
		if k, v := lookup(m, key); k != nil {
			return k, v
		}
	}
	return nil, nil
}

// resolve follows an alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isMerge reports whether k is YAML's merge key, <<.
func isMerge(k *yaml.Node) bool { return k.Kind == yaml.ScalarNode && k.Tag == "!!merge" }

// mergedMappings returns what a merge key's value merges in: one mapping,
// or a list of them.
func mergedMappings(v *yaml.Node) []*yaml.Node {
	v = resolve(v)
	if v.Kind == yaml.SequenceNode {
		out := make([]*yaml.Node, 0, len(v.Content))
		for _, m := range v.Content {
			out = append(out, resolve(m))
		}
		return out
	}
	return []*yaml.Node{v}
}
