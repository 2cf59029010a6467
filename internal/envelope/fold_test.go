package envelope

import (
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// TestFoldCaseASCIIMatchesTheFoldingOrbits checks the ASCII fast path of
// appendFold, on strings and on bytes, against the orbits it stands for: every ASCII string folds as
// its runes' least orbit members would, so "Kelvin" with U+212A and with
// K are still one key.
func TestFoldCaseASCIIMatchesTheFoldingOrbits(t *testing.T) {
	least := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			m := r
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				m = min(m, f)
			}
			b.WriteRune(m)
		}
		return b.String()
	}
	foldCase := func(s string) string {
		folded := string(appendFold(nil, s))
		require.Equal(t, folded, string(appendFold([]byte("kept:"), []byte(s)))[len("kept:"):], "bytes fold as strings do")
		return folded
	}
	for c := range 128 {
		s := "x" + string(rune(c)) + "Y"
		require.Equal(t, least(s), foldCase(s), "byte %#x", c)
	}
	for _, s := range []string{"", "id", "ID", "data.object", "api_version", "\u212Aey", "ſtatus", "Ünïcode", "amount", "ke\u212a", "data\u017fÜ"} {
		require.Equal(t, least(s), foldCase(s), "%q", s)
	}
	require.Equal(t, foldCase("key"), foldCase("\u212Aey"), "KELVIN SIGN folds with k")
	require.Equal(t, foldCase("status"), foldCase("ſtatus"), "LONG S folds with s")
}
