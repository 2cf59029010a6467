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
	// CaseVariantKey is a key that differs only in case from one the
	// envelope reads ("Type" for "type", "Data" for "data"): gjson would
	// not see it, and encoding/json would read it as the real one.
	CaseVariantKey KeyProblem = "a key that differs only in case from one Hookline reads"
)

// linearKeys is how many keys an object may hold before duplicates are
// found with a map rather than by comparing each new key with the earlier
// ones: a body of one object with 100,000 keys must cost a pass, not 10^10
// comparisons.
const linearKeys = 16

// CheckKeys reports the first ambiguous key of body, a valid JSON text. It
// returns the problem and the byte offset of the key, or ("", -1):
//   - DuplicateKey: a key repeated in any object;
//   - FoldedKey: two keys equal when case is ignored, in the root object
//     and in every object on the way to, or at, one of paths (dotted paths
//     of what is read, such as "type" or "data.object");
//   - CaseVariantKey: on those objects, a key that names a step of one of
//     paths in another case ("Data" for "data").
//
// Case matters only on the paths that are read, because the objects below
// them can hold keys that users chose (Stripe's metadata), where "Plan" and
// "plan" may both be genuine. Paths are matched ignoring case, as
// encoding/json matches them.
//
// Like Depth, it is one iterative pass with no recursion. It assumes body
// is valid JSON (Extract checks first) and does not validate it.
func CheckKeys(body []byte, paths []string) (KeyProblem, int) {
	s := keyScanner{fold: map[string]map[string]string{"": {}}}
	for _, p := range paths {
		parent := ""
		for step := range strings.SplitSeq(p, ".") {
			folded := foldCase(step)
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

// frame is one open object or array.
type frame struct {
	object bool
	// first is the index in keyScanner.keys of this object's first key.
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

type keyScanner struct {
	stack []frame
	keys  []string
	// fold holds, for each object on a read path (by folded path), the
	// steps read in it: folded name to the name as written.
	fold map[string]map[string]string
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
	path := foldCase(parent.lastKey)
	if parent.path != "" {
		path = parent.path + "\x00" + path
	}
	_, onPath := s.fold[path]
	return onPath, path
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
		if want, read := s.fold[f.path][k]; read && want != key {
			return CaseVariantKey
		}
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

// unquote decodes a JSON string's contents as encoding/json does: a lone
// surrogate escape, and each byte that is not valid UTF-8, becomes U+FFFD.
func unquote(raw []byte) string {
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

// hex4 reads the four hex digits of a \u escape at raw[at:].
func hex4[T string | []byte](raw T, at int) (rune, bool) {
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
	// The orbit of an ASCII letter is its two cases and, for k and s, a
	// rune above ASCII (U+212A KELVIN SIGN, U+017F LONG S): its least is
	// the upper case. Other ASCII runes fold to themselves. Keys are
	// almost always ASCII, and this path costs no SimpleFold walk, and no
	// allocation when s has no lower-case letter.
	if ascii, lower := asciiCase(s); ascii {
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

// asciiCase reports whether s is all ASCII, and whether it holds a
// lower-case letter.
func asciiCase(s string) (ascii, lower bool) {
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
