package envelope

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// This file keeps the first Extract, CheckKeys and Depth, which decoded
// every key into a string and kept its sets in maps, as the reference
// that the allocation-free versions must agree with byte for byte (see
// FuzzCheckKeysAgreesWithReference and FuzzExtractAgreesWithReference).

// refCheckKeys is CheckKeys as it was, with a string per key and a map
// per set.
func refCheckKeys(body []byte, paths []string) (KeyProblem, int) {
	s := refKeyScanner{fold: map[string]map[string]string{"": {}}}
	for _, p := range paths {
		parent := ""
		for step := range strings.SplitSeq(p, ".") {
			folded := refFoldCase(step)
			s.fold[parent][folded] = step
			if parent != "" {
				parent += "\x00"
			}
			parent += folded
			if s.fold[parent] == nil {
				s.fold[parent] = map[string]string{}
			}
		}
	}
	return s.scan(body)
}

// refFrame is one open object or array.
type refFrame struct {
	object bool
	// first is the index in refKeyScanner.keys of this object's first key.
	first int
	// set holds the keys once there are more than linearKeys.
	set map[string]struct{}
	// fold is set for objects on a read path; folded holds their keys
	// with case folded, and path is their path, folded, NUL-separated.
	fold   bool
	folded map[string]struct{}
	path   string
	// lastKey is the key whose value is being read, for a child's path.
	lastKey string
}

type refKeyScanner struct {
	stack []refFrame
	keys  []string
	// fold holds, for each object on a read path (by folded path), the
	// steps read in it: folded name to the name as written.
	fold map[string]map[string]string
}

func (s *refKeyScanner) scan(body []byte) (KeyProblem, int) {
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			f := refFrame{object: c == '{', first: len(s.keys)}
			if c == '{' {
				f.fold, f.path = s.childPath()
			}
			s.stack = append(s.stack, f)
			expectKey = c == '{'
		case '}', ']':
			if n := len(s.stack); n > 0 {
				s.keys = s.keys[:s.stack[n-1].first]
				s.stack = s.stack[:n-1]
			}
			expectKey = false
		case ',':
			expectKey = len(s.stack) > 0 && s.stack[len(s.stack)-1].object
		case '"':
			end := refStringEnd(body, i)
			if expectKey {
				if p := s.addKey(body[i+1 : end]); p != "" {
					return p, i
				}
				expectKey = false
			}
			i = end
		}
	}
	return "", -1
}

// childPath returns whether an object opened now lies on a fold path, and
// its path.
func (s *refKeyScanner) childPath() (bool, string) {
	n := len(s.stack)
	if n == 0 {
		return true, "" // the root
	}
	parent := s.stack[n-1]
	if !parent.object || !parent.fold {
		return false, ""
	}
	path := refFoldCase(parent.lastKey)
	if parent.path != "" {
		path = parent.path + "\x00" + path
	}
	_, onPath := s.fold[path]
	return onPath, path
}

// addKey records raw, a key's bytes between its quotes, in the innermost
// object and reports the ambiguity it makes, if any.
func (s *refKeyScanner) addKey(raw []byte) KeyProblem {
	f := &s.stack[len(s.stack)-1]
	key := refUnquote(raw)
	if f.fold {
		f.lastKey = key
	}
	if f.set != nil {
		if _, dup := f.set[key]; dup {
			return DuplicateKey
		}
		f.set[key] = struct{}{}
	} else {
		for _, k := range s.keys[f.first:] {
			if k == key {
				return DuplicateKey
			}
		}
		if len(s.keys)-f.first >= linearKeys {
			f.set = make(map[string]struct{}, 2*linearKeys)
			for _, k := range s.keys[f.first:] {
				f.set[k] = struct{}{}
			}
			f.set[key] = struct{}{}
		}
	}
	s.keys = append(s.keys, key)
	if f.fold {
		if f.folded == nil {
			f.folded = map[string]struct{}{}
		}
		k := refFoldCase(key)
		if _, dup := f.folded[k]; dup {
			return FoldedKey
		}
		f.folded[k] = struct{}{}
		if want, read := s.fold[f.path][k]; read && want != key {
			return CaseVariantKey
		}
	}
	return ""
}

// refStringEnd returns the index of the quote that closes the string opening
// at body[start].
func refStringEnd(body []byte, start int) int {
	for i := start + 1; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(body)
}

// refUnquote decodes a JSON string's contents as encoding/json does: a lone
// surrogate escape, and each byte that is not valid UTF-8, becomes U+FFFD.
func refUnquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw)
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(raw[i:])
			b.WriteRune(r) // utf8.RuneError for an invalid byte
			i += size - 1
			continue
		}
		if c != '\\' || i+1 >= len(raw) {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(raw, i+1)
			if !ok {
				b.WriteRune(utf8.RuneError)
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2, ok := hex4(raw, i+3); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b.WriteRune(dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default: // \" \\ \/
			b.WriteByte(raw[i])
		}
	}
	return b.String()
}

// refFoldCase maps s to a form shared by every string that strings.EqualFold
// (and so encoding/json's field matching) treats as equal to it: each rune
// becomes the smallest rune of its case-folding orbit.
func refFoldCase(s string) string {
	// The orbit of an ASCII letter is its two cases and, for k and s, a
	// rune above ASCII (U+212A KELVIN SIGN, U+017F LONG S): its least is
	// the upper case. Other ASCII runes fold to themselves. Keys are
	// almost always ASCII, and this path costs no SimpleFold walk, and no
	// allocation when s has no lower-case letter.
	if ascii, lower := refASCIICase(s); ascii {
		if !lower {
			return s
		}
		b := []byte(s)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - ('a' - 'A')
			}
		}
		return string(b)
	}
	var b strings.Builder
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// refASCIICase reports whether s is all ASCII, and whether it holds a
// lower-case letter.
func refASCIICase(s string) (ascii, lower bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return false, false
		}
		if 'a' <= c && c <= 'z' {
			lower = true
		}
	}
	return true, lower
}

// refExtract is Extract as it was.
func refExtract(x Extractor, header http.Header, body []byte) (Envelope, error) {
	if _, at := refDepth(body, MaxDepth); at >= 0 {
		return Envelope{}, fmt.Errorf("%w: JSON nested deeper than %d levels (at byte %d)", ErrMalformed, MaxDepth, at)
	}
	// The id, type and API version, when located in the body, make it a
	// JSON object. The object and time do not: they are optional, and a
	// source whose other fields come from headers (Shopify, which may send
	// XML) has them from a JSON body only.
	inBody := slices.ContainsFunc([]Locator{x.ID, x.Type, x.APIVersion}, func(l Locator) bool { return l.JSON != "" })
	if inBody {
		// JSON is UTF-8 (RFC 8259); gjson would pass invalid bytes through.
		if at := invalidUTF8(body); at >= 0 {
			return Envelope{}, fmt.Errorf("%w: body is not valid UTF-8 (at byte %d)", ErrMalformed, at)
		}
		if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
			return Envelope{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
		}
	}
	// A source that reads nothing from the body may still be sent JSON,
	// which its handlers will parse: hold it to the same rule.
	jsonBody := inBody || looksJSON(body) && gjson.ValidBytes(body)
	if jsonBody {
		if problem, at := refCheckKeys(body, refReadPaths(x)); at >= 0 {
			return Envelope{}, fmt.Errorf("%w: %s in a JSON object (at byte %d)", ErrMalformed, problem, at)
		}
	}
	var env Envelope
	var err error
	if env.ID, err = field(header, body, "id", x.ID, MaxIDLen); err != nil {
		return Envelope{}, err
	}
	if env.ID == "" {
		return Envelope{}, fmt.Errorf("%w: missing id (%s)", ErrMalformed, x.ID)
	}
	if env.Type, err = field(header, body, "type", x.Type, MaxTypeLen); err != nil {
		return Envelope{}, err
	}
	if env.APIVersion, err = field(header, body, "api_version", x.APIVersion, MaxTypeLen); err != nil {
		return Envelope{}, err
	}
	if env.Object, err = objectField(header, body, jsonBody, x.Object); err != nil {
		return Envelope{}, err
	}
	if env.Time, err = timeField(header, body, jsonBody, x.Time); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// refReadPaths is what Extract passed CheckKeys as it was.
func refReadPaths(x Extractor) []string {
	paths := x.ReadObjects
	for _, l := range append([]Locator{x.ID, x.Type, x.APIVersion, x.Object}, x.Time...) {
		if l.JSON != "" {
			paths = append(paths[:len(paths):len(paths)], l.JSON)
		}
	}
	return paths
}

// refDepth is Depth as it was.
func refDepth(body []byte, limit int) (depth, offset int) {
	cur := 0
	inString, escaped := false, false
	for i, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			cur++
			if cur > depth {
				depth = cur
				if depth > limit {
					return depth, i
				}
			}
		case ']', '}':
			if cur > 0 {
				cur--
			}
		}
	}
	return depth, -1
}
