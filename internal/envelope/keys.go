package envelope

import (
	"bytes"
	"strconv"
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
// found with a hash table rather than by comparing each new key with the
// earlier ones: a body of one object with 100,000 keys must cost a pass,
// not 10^10 comparisons.
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
	s := getScanner()
	defer putScanner(s)
	for _, p := range paths {
		s.addPath(p)
	}
	s.setPaths()
	return s.scan(body)
}

// stringEnd returns the index of the quote that closes the string opening
// at body[start], or len(body).
func stringEnd(body []byte, start int) int {
	// Most strings are short, and a byte loop finds their end sooner than
	// a call to IndexByte would.
	i := start + 1
	for short := min(len(body), start+16); i < short; i++ {
		switch body[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	for i < len(body) {
		q := bytes.IndexByte(body[i:], '"')
		if q < 0 {
			return len(body)
		}
		i += q
		// The quote closes the string unless an odd run of backslashes,
		// each escaping the next, ends just before it.
		escapes := 0
		for j := i - 1; j > start && body[j] == '\\'; j-- {
			escapes++
		}
		if escapes%2 == 0 {
			return i
		}
		i++
	}
	return len(body)
}

// appendUnquote appends a JSON string's contents, decoded as encoding/json
// does, to dst: a lone surrogate escape, and each byte that is not valid
// UTF-8, becomes U+FFFD.
func appendUnquote(dst, raw []byte) []byte {
	if plain(raw) || bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return append(dst, raw...)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(raw[i:])
			dst = utf8.AppendRune(dst, r) // utf8.RuneError for an invalid byte
			i += size - 1
			continue
		}
		if c != '\\' || i+1 >= len(raw) {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw, i+1)
			if !ok {
				dst = utf8.AppendRune(dst, utf8.RuneError)
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2, ok := hex4(raw, i+3); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // \" \\ \/
			dst = append(dst, raw[i])
		}
	}
	return dst
}

// plain reports whether raw is ASCII with no escape, as almost every key
// is, and so is its own decoding: for short keys one loop costs less than
// IndexByte and utf8.Valid.
func plain(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hex4 reads the four hex digits of a \u escape at raw[at:].
func hex4[T string | []byte](raw T, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw[at:at+4]), 16, 32)
	return rune(v), err == nil
}

// appendFold appends s to dst in a form shared by every string that
// strings.EqualFold (and so encoding/json's field matching) treats as equal
// to it: each rune becomes the smallest rune of its case-folding orbit.
func appendFold[T string | []byte](dst []byte, s T) []byte {
	// The orbit of an ASCII letter is its two cases and, for k and s, a
	// rune above ASCII (U+212A KELVIN SIGN, U+017F LONG S): its least is
	// the upper case. Other ASCII runes fold to themselves. Keys are
	// almost always ASCII, and this path costs no SimpleFold walk.
	n := len(dst)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return appendFoldRunes(dst[:n], s)
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendFoldRunes is appendFold for s holding a rune above ASCII.
func appendFoldRunes[T string | []byte](dst []byte, s T) []byte {
	for _, r := range string(s) {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		dst = utf8.AppendRune(dst, least)
	}
	return dst
}
