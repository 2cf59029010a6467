package verify

import (
	"fmt"
	"hash"
	"io"
	"strings"
)

// partKind is one piece of a signed-content template.
type partKind uint8

const (
	partLiteral partKind = iota
	partTimestamp
	partBody
)

type part struct {
	kind partKind
	lit  string
}

// signedContent is a compiled HMACOptions.Template: the bytes a sender
// feeds to the HMAC, in order.
type signedContent []part

// compileTemplate parses a template such as "{timestamp}.{body}". Only the
// {timestamp} and {body} placeholders exist; any other brace is an error
// rather than a literal, so that a typo such as "{Body}" fails at startup
// instead of at every request. The body must appear exactly once, or the
// signature would not cover it; the timestamp must appear exactly when a
// timestamp header is configured, or the window would check a value the
// signature does not bind.
func compileTemplate(tpl string, withTimestamp bool) (signedContent, error) {
	var out signedContent
	var bodies, stamps int
	for rest := tpl; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			out = append(out, part{kind: partLiteral, lit: rest})
			break
		}
		if i > 0 {
			out = append(out, part{kind: partLiteral, lit: rest[:i]})
		}
		if rest[i] == '}' {
			return nil, fmt.Errorf("template %q: unmatched '}'", tpl)
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("template %q: unmatched '{'", tpl)
		}
		switch name := rest[i+1 : i+end]; name {
		case "body":
			bodies++
			out = append(out, part{kind: partBody})
		case "timestamp":
			stamps++
			out = append(out, part{kind: partTimestamp})
		default:
			return nil, fmt.Errorf("template %q: unknown placeholder {%s}; only {timestamp} and {body} exist", tpl, name)
		}
		rest = rest[i+end+1:]
	}
	switch {
	case bodies != 1:
		return nil, fmt.Errorf("template %q: {body} must appear exactly once", tpl)
	case withTimestamp && stamps != 1:
		return nil, fmt.Errorf("template %q: {timestamp} must appear exactly once when TimestampHeader is set", tpl)
	case !withTimestamp && stamps != 0:
		return nil, fmt.Errorf("template %q: {timestamp} needs TimestampHeader", tpl)
	}
	return out, nil
}

// write feeds the signed content to h without building it in memory.
func (c signedContent) write(h hash.Hash, timestamp string, body []byte) {
	for _, p := range c {
		switch p.kind {
		case partLiteral:
			io.WriteString(h, p.lit)
		case partTimestamp:
			io.WriteString(h, timestamp)
		case partBody:
			h.Write(body)
		}
	}
}
