package sources

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// example is the smallest useful sources file, shown when a file declares
// no source at all.
const example = `sources: [{name: stripe, type: stripe, secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]}]`

// empty is the problem of a file with no YAML in it.
const empty = "the file holds no YAML (it is empty, or only comments); it should hold a list of sources, such as " + example

// syntaxLineRe finds the line in the YAML library's syntax errors
// ("yaml: line 3: did not find expected key").
var syntaxLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// ReadFile reads the sources file at path strictly. A mistake in it (an
// unknown field, such as an inline "value" for a secret; a value of the
// wrong kind; a field set twice; text that is not YAML) is an *Error,
// whose problems each give the line and the path of the field as the file
// writes it. Errors do not repeat path: the caller says which file it read
// (Load: HOOKLINE_SOURCES=path).
func ReadFile(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The caller names the file, which the PathError would repeat.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return File{}, fmt.Errorf("cannot read the file: %w", err)
	}
	return parse(b)
}

// parse reads a sources file's bytes: its YAML, then its shape, then the
// sources themselves, each a step only when the one before found nothing.
func parse(b []byte) (File, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return File{}, errorOf([]Problem{{Msg: empty}})
	} else if err != nil {
		return File{}, errorOf([]Problem{syntaxProblem(err, b)})
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return File{}, errorOf([]Problem{{Line: next.Line, Msg: "a second YAML document begins here (after ---); put every source in the one sources: list"}})
	} else if !errors.Is(err, io.EOF) {
		return File{}, errorOf([]Problem{syntaxProblem(err, b)})
	}

	root := resolve(doc.Content[0])
	switch {
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		return File{}, errorOf([]Problem{{Msg: empty}})
	case root.Kind == yaml.SequenceNode:
		return File{}, errorOf([]Problem{{Line: root.Line, Msg: "the file is a list; it should be a mapping whose sources: key holds the list (is the sources: line missing?), such as " + example}})
	case root.Kind != yaml.MappingNode:
		return File{}, errorOf([]Problem{{Line: root.Line, Msg: "the file is " + found(root) + ", not a mapping; it should hold a list of sources, such as " + example}})
	}
	var shape shapeChecker
	shape.mapping(root, reflect.TypeFor[File](), "", map[string]int{})
	// In file order: a problem inside an anchor is found where it is used.
	slices.SortStableFunc(shape.problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	if err := errorOf(shape.problems); err != nil {
		return File{}, err
	}

	var f File
	if err := root.Decode(&f); err != nil {
		// Once the shape is right, only the library's own limits are left,
		// such as "document contains excessive aliasing".
		return File{}, errorOf([]Problem{{Msg: "cannot be read: " + strings.TrimPrefix(err.Error(), "yaml: ")}})
	}
	k, list := lookup(root, "sources")
	if len(f.Sources) == 0 {
		p := Problem{Line: 1, Path: "sources", Msg: "declares no sources; list at least one, such as " + example}
		if k != nil {
			p.Line = k.Line
		}
		return File{}, errorOf([]Problem{p})
	}
	for i := range f.Sources {
		f.Sources[i].node = resolve(resolve(list).Content[i])
	}
	return f, nil
}

// syntaxProblem turns the YAML library's syntax error into a problem,
// placed on its line when the library gives one. A tab in an indentation,
// which YAML forbids, is named and placed on its own line: the library
// reports it as "found character that cannot start any token", with no
// line, or on the line before.
func syntaxProblem(err error, b []byte) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{Msg: "not valid YAML: " + msg}
	if m := syntaxLineRe.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = "not valid YAML: " + msg[len(m[0]):]
	}
	if !strings.Contains(msg, "cannot start any token") && !strings.Contains(msg, "tab character") {
		return p
	}
	for i, line := range strings.Split(string(b), "\n") {
		if indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]; strings.Contains(indent, "\t") {
			p.Line, p.Msg = i+1, "not valid YAML: a tab in the indentation; YAML indents with spaces only"
			break
		}
	}
	return p
}
