package envelope

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// KeyProblem says why a JSON body's keys are ambiguous.
type KeyProblem string

// The ambiguities CheckKeys finds.
const (
	// DuplicateKey is an object holding one key twice, after escapes are
	// decoded ("id" and "i\u0064" are the same key). Parsers disagree on
	// which value wins: gjson, and so the envelope, takes the first, while
	// encoding/json, and so most handlers, takes the last.
	DuplicateKey KeyProblem = "duplicate key"
	// FoldedKey is an object, on a path that handlers read, holding two
	// keys that differ only in case ("amount" and "Amount"): encoding/json
	// matches struct fields case-insensitively, so either could fill the
	// field.
	FoldedKey KeyProblem = "keys that differ only in case"
)

// linearKeys is how many keys an object may hold before duplicates are
// found with a map rather than by comparing each new key with the earlier
// ones: a body of one object with 100,000 keys must cost a pass, not 10^10
// comparisons.
const linearKeys = 16

// CheckKeys reports the first ambiguous key of body, a valid JSON text: a
// key repeated in any object, or, in the root object and the objects at
// foldPaths (dotted paths such as "data.object", and every object on the
// way to them), two keys equal when case is ignored. It returns the
// problem and the byte offset of the second key, or ("", -1).
//
// Case is compared only on the paths that handlers read, because the
// objects below them can hold keys that users chose (Stripe's metadata),
// where "Plan" and "plan" may both be genuine.
//
// Like Depth, it is one iterative pass with no recursion. It assumes body
// is valid JSON (Extract checks first) and does not validate it.
func CheckKeys(body []byte, foldPaths []string) (KeyProblem, int) {
	var s keyScanner
	s.foldSet = map[string]bool{"": true}
	for _, p := range foldPaths {
		parts := strings.Split(p, ".")
		for i := range parts {
			s.foldSet[strings.Join(parts[:i+1], "\x00")] = true
		}
	}
	return s.scan(body)
}

// frame is one open object or array.
type frame struct {
	object bool
	// first is the index in keyScanner.keys of this object's first key.
	first int
	// set holds the keys once there are more than linearKeys.
	set map[string]struct{}
	// fold is set for objects on a fold path; folded holds their keys
	// with case folded, and path is their dotted path.
	fold   bool
	folded map[string]struct{}
	path   string
	// lastKey is the key whose value is being read, for a child's path.
	lastKey string
}

type keyScanner struct {
	stack   []frame
	keys    []string
	foldSet map[string]bool
}

func (s *keyScanner) scan(body []byte) (KeyProblem, int) {
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			f := frame{object: c == '{', first: len(s.keys)}
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
			end := stringEnd(body, i)
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
func (s *keyScanner) childPath() (bool, string) {
	n := len(s.stack)
	if n == 0 {
		return true, "" // the root
	}
	parent := s.stack[n-1]
	if !parent.object || !parent.fold {
		return false, ""
	}
	path := parent.lastKey
	if parent.path != "" {
		path = parent.path + "\x00" + parent.lastKey
	}
	return s.foldSet[path], path
}

// addKey records raw, a key's bytes between its quotes, in the innermost
// object and reports the ambiguity it makes, if any.
func (s *keyScanner) addKey(raw []byte) KeyProblem {
	f := &s.stack[len(s.stack)-1]
	key := unquote(raw)
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
		k := foldCase(key)
		if _, dup := f.folded[k]; dup {
			return FoldedKey
		}
		f.folded[k] = struct{}{}
	}
	return ""
}

// stringEnd returns the index of the quote that closes the string opening
// at body[start].
func stringEnd(body []byte, start int) int {
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

// unquote decodes a JSON string's contents as encoding/json does, a lone
// surrogate escape becoming U+FFFD.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
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

func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw[at:at+4]), 16, 32)
	return rune(v), err == nil
}

// foldCase maps s to a form shared by every string that strings.EqualFold
// (and so encoding/json's field matching) treats as equal to it: each rune
// becomes the smallest rune of its case-folding orbit.
func foldCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// loneSurrogate reports whether a JSON string literal, quotes included,
// holds a \u escape of a UTF-16 surrogate that is not half of a pair.
// Decoders turn each such escape into U+FFFD, so distinct signed ids such
// as "\ud800" and "\udfff" would become one key.
func loneSurrogate(raw string) bool {
	b := []byte(raw)
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b, i+1)
		if !ok || !utf16.IsSurrogate(r) {
			i += 4
			continue
		}
		i += 4
		if r >= 0xDC00 { // a low half with no high half before it
			return true
		}
		if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
			return true
		}
		r2, ok := hex4(b, i+3)
		if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
			return true
		}
		i += 6
	}
	return false
}
