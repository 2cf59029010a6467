package envelope

import (
	"bytes"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
)

// CheckKeys runs once per request, on every key of the body. The scanner
// keeps each key's decoded bytes in one buffer rather than a string apiece,
// finds repeats in large objects through hash tables kept in one slab, and
// is pooled, so that a body costs no allocation once the pool is warm.

// scanners holds idle keyScanners. A scanner holds no reference to a body
// once putScanner has reset it, so reuse cannot leak one request's bytes
// into another's result.
var scanners = sync.Pool{New: func() any { return newKeyScanner() }}

// Past these sizes a scanner is dropped rather than pooled, so that one
// huge body does not pin its buffers for the life of the process.
const (
	maxPooledArena = 64 << 10
	maxPooledKeys  = 4096
)

func getScanner() *keyScanner { return scanners.Get().(*keyScanner) }

func putScanner(s *keyScanner) {
	if cap(s.arena) > maxPooledArena || cap(s.keys) > maxPooledKeys || cap(s.slots) > 4*maxPooledKeys ||
		cap(s.paths) > maxPooledArena || cap(s.stack) > maxPooledKeys {
		return
	}
	s.reset()
	scanners.Put(s)
}

// span is a run of bytes in one of keyScanner's buffers.
type span struct{ start, end int }

// keyEntry is one key of an open object.
type keyEntry struct {
	// key is the key decoded (see appendUnquote), in keyScanner.arena.
	key span
	// cmp is what the object compares keys by, in keyScanner.arena: the
	// key itself, or on a read path the key with case folded.
	cmp span
	// hash is cmp's hash, once the object is indexed.
	hash uint64
}

// frame is one open object or array.
type frame struct {
	object bool
	// first is the index in keyScanner.keys of this object's first key,
	// and arena the length of keyScanner.arena when it opened.
	first, arena int
	// indexed is set once the object holds more than linearKeys keys:
	// its keys are then in the hash table at keyScanner.slots[table:],
	// of tableLen slots.
	indexed         bool
	table, tableLen int
	// node is the index in keyScanner.nodes of the object's read path,
	// -1 when it is on none.
	node int
	// last is the index in keyScanner.keys of the key whose value is
	// being read, for a child's path; -1 before the first key.
	last int
}

// pathNode is an object on a read path. path is its path in
// keyScanner.paths: its steps' folded names joined by NULs, as the first
// CheckKeys keyed them, so that a key holding a NUL matches the paths it
// always did. steps is its first step in keyScanner.steps, -1 for none.
type pathNode struct {
	path  span
	steps int
}

// pathStep is a step read in an object on a read path: folded is its name
// with case folded, in keyScanner.paths, and written its name as written.
// next is the object's next step, -1 for none.
type pathStep struct {
	folded  span
	written string
	next    int
}

// keyScanner is CheckKeys's state, reused from body to body.
type keyScanner struct {
	stack []frame
	keys  []keyEntry
	// arena holds the open objects' keys, decoded and folded; closing an
	// object truncates it back to frame.arena.
	arena []byte
	// slots holds the indexed objects' hash tables, open-addressed, each
	// slot an index in keys plus one, or 0 for empty. Only the innermost
	// indexed object adds keys (its children have closed), so its table
	// is the last and grows in place; closing it truncates slots. Keys
	// found by hash are compared byte for byte, so a collision costs
	// time and never changes a result.
	slots []int32
	// hash is maphash under the scanner's own random seed, so that a
	// sender cannot pick keys that collide; tests make every hash collide.
	hash func([]byte) uint64
	// built lists the read paths that paths, nodes and steps were built
	// from, and pending those of the body to come (see setPaths).
	built, pending []string
	// paths holds the read paths' folded names. nodes are the objects on
	// read paths; nodes[0] is the root, "".
	paths []byte
	nodes []pathNode
	steps []pathStep
}

func newKeyScanner() *keyScanner {
	seed := maphash.MakeSeed()
	s := &keyScanner{hash: func(b []byte) uint64 { return maphash.Bytes(seed, b) }}
	s.setPaths()
	return s
}

// reset empties s for another body, keeping its storage and read paths.
func (s *keyScanner) reset() {
	s.stack = s.stack[:0]
	s.keys = s.keys[:0]
	s.arena = s.arena[:0]
	s.slots = s.slots[:0]
	s.pending = s.pending[:0]
}

// addPath adds a dotted read path to those of the body to come.
func (s *keyScanner) addPath(p string) { s.pending = append(s.pending, p) }

// setPaths makes the added paths the read paths. A pooled scanner mostly
// sees one source's paths body after body, so the tables are rebuilt only
// when the paths differ from the last body's.
func (s *keyScanner) setPaths() {
	if len(s.nodes) > 0 && slices.Equal(s.pending, s.built) {
		return
	}
	s.paths = s.paths[:0]
	clear(s.steps) // drop the old path strings
	s.steps = s.steps[:0]
	s.nodes = append(s.nodes[:0], pathNode{steps: -1})
	for _, p := range s.pending {
		s.buildPath(p)
	}
	s.built, s.pending = s.pending, s.built[:0]
}

// buildPath records a dotted read path: each step is read in the object
// its previous steps lead to, and each object on the way lies on a read
// path. A later path's spelling of a step replaces an earlier one's.
func (s *keyScanner) buildPath(p string) {
	parent := 0
	for {
		step, rest, more := strings.Cut(p, ".")
		start := len(s.paths)
		s.paths = appendFold(s.paths, step)
		folded := span{start, len(s.paths)}
		s.setStep(parent, folded, step)
		child := s.child(parent, s.paths[folded.start:folded.end])
		if child < 0 {
			child = len(s.nodes)
			at := len(s.paths)
			parentPath := s.nodes[parent].path
			s.paths = append(s.paths, s.paths[parentPath.start:parentPath.end]...)
			if parentPath.end > parentPath.start {
				s.paths = append(s.paths, 0)
			}
			s.paths = append(s.paths, s.paths[folded.start:folded.end]...)
			s.nodes = append(s.nodes, pathNode{path: span{at, len(s.paths)}, steps: -1})
		}
		parent = child
		if !more {
			return
		}
		p = rest
	}
}

func (s *keyScanner) setStep(node int, folded span, written string) {
	b := s.paths[folded.start:folded.end]
	for i := s.nodes[node].steps; i >= 0; i = s.steps[i].next {
		if st := &s.steps[i]; bytes.Equal(s.paths[st.folded.start:st.folded.end], b) {
			st.written = written
			return
		}
	}
	s.steps = append(s.steps, pathStep{folded: folded, written: written, next: s.nodes[node].steps})
	s.nodes[node].steps = len(s.steps) - 1
}

// step returns the name as written of the step read at node whose folded
// name is folded.
func (s *keyScanner) step(node int, folded []byte) (string, bool) {
	for i := s.nodes[node].steps; i >= 0; i = s.steps[i].next {
		if st := &s.steps[i]; st.folded.end-st.folded.start == len(folded) && bytes.Equal(s.paths[st.folded.start:st.folded.end], folded) {
			return st.written, true
		}
	}
	return "", false
}

// child returns the node whose path is parent's followed by folded, or -1.
func (s *keyScanner) child(parent int, folded []byte) int {
	pp := s.paths[s.nodes[parent].path.start:s.nodes[parent].path.end]
	sep := 0
	if len(pp) > 0 {
		sep = 1
	}
	for i, n := range s.nodes {
		path := s.paths[n.path.start:n.path.end]
		if len(path) == len(pp)+sep+len(folded) && bytes.HasPrefix(path, pp) &&
			(sep == 0 || path[len(pp)] == 0) && bytes.Equal(path[len(pp)+sep:], folded) {
			return i
		}
	}
	return -1
}

func (s *keyScanner) bytes(sp span) []byte { return s.arena[sp.start:sp.end] }

func (s *keyScanner) scan(body []byte) (KeyProblem, int) {
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			f := frame{object: c == '{', first: len(s.keys), arena: len(s.arena), node: -1, last: -1}
			if c == '{' {
				f.node = s.childNode()
			}
			s.stack = append(s.stack, f)
			expectKey = c == '{'
		case '}', ']':
			if n := len(s.stack); n > 0 {
				s.close(&s.stack[n-1])
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

// childNode returns the read path node of an object opened now, or -1.
func (s *keyScanner) childNode() int {
	n := len(s.stack)
	if n == 0 {
		return 0 // the root
	}
	parent := s.stack[n-1]
	if !parent.object || parent.node < 0 {
		return -1
	}
	var folded []byte
	if parent.last >= 0 {
		folded = s.bytes(s.keys[parent.last].cmp)
	}
	return s.child(parent.node, folded)
}

// close forgets the keys of f, which is closing.
func (s *keyScanner) close(f *frame) {
	if f.indexed {
		s.slots = s.slots[:f.table]
	}
	s.keys = s.keys[:f.first]
	s.arena = s.arena[:f.arena]
}

// addKey records raw, a key's bytes between its quotes, in the innermost
// object and reports the ambiguity it makes, if any.
func (s *keyScanner) addKey(raw []byte) KeyProblem {
	f := &s.stack[len(s.stack)-1]
	start := len(s.arena)
	s.arena = appendUnquote(s.arena, raw)
	e := keyEntry{key: span{start, len(s.arena)}}
	e.cmp = e.key
	if f.node >= 0 {
		start := len(s.arena)
		s.arena = appendFold(s.arena, s.bytes(e.key))
		e.cmp = span{start, len(s.arena)}
	}
	cmp := s.bytes(e.cmp)
	// On a read path a key may match an earlier one only when folded, and
	// no two earlier keys match each other (that was reported), so the
	// first match found is the only one.
	match := -1
	if f.indexed {
		e.hash = s.hash(cmp)
		table := s.slots[f.table : f.table+f.tableLen]
		mask := uint64(f.tableLen - 1)
		for p := e.hash & mask; table[p] != 0; p = (p + 1) & mask {
			if j := int(table[p]) - 1; s.keys[j].hash == e.hash && bytes.Equal(s.bytes(s.keys[j].cmp), cmp) {
				match = j
				break
			}
		}
	} else {
		for j := f.first; j < len(s.keys); j++ {
			if bytes.Equal(s.bytes(s.keys[j].cmp), cmp) {
				match = j
				break
			}
		}
	}
	if match >= 0 {
		if f.node < 0 || bytes.Equal(s.bytes(s.keys[match].key), s.bytes(e.key)) {
			return DuplicateKey
		}
		return FoldedKey
	}
	if f.node >= 0 {
		if want, read := s.step(f.node, cmp); read && want != string(s.bytes(e.key)) {
			return CaseVariantKey
		}
	}
	f.last = len(s.keys)
	s.keys = append(s.keys, e)
	switch {
	case f.indexed:
		if 2*(len(s.keys)-f.first) > f.tableLen {
			s.rehash(f, 2*f.tableLen)
		} else {
			s.insert(f, f.last)
		}
	case len(s.keys)-f.first > linearKeys:
		for j := f.first; j < len(s.keys); j++ {
			s.keys[j].hash = s.hash(s.bytes(s.keys[j].cmp))
		}
		f.indexed = true
		s.rehash(f, 4*linearKeys)
	}
	return ""
}

// rehash gives f, the innermost indexed object, a table of size slots (a
// power of two, at least twice its keys) holding all its keys. A table
// that grows is the last in slots, so it grows in place.
func (s *keyScanner) rehash(f *frame, size int) {
	if f.tableLen == 0 {
		f.table = len(s.slots)
	}
	f.tableLen = size
	s.slots = slices.Grow(s.slots[:f.table], size)[:f.table+size]
	clear(s.slots[f.table:])
	for j := f.first; j < len(s.keys); j++ {
		s.insert(f, j)
	}
}

// insert puts keys[j], with its hash set, in f's table.
func (s *keyScanner) insert(f *frame, j int) {
	table := s.slots[f.table : f.table+f.tableLen]
	mask := uint64(f.tableLen - 1)
	p := s.keys[j].hash & mask
	for table[p] != 0 {
		p = (p + 1) & mask
	}
	table[p] = int32(j + 1)
}
