package sources_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/sources"
)

// planted is a secret written where it does not belong; no error may
// repeat it.
const planted = "whsec_Planted0Into9The8File"

// goWords are what the YAML library's own errors say, and a person editing
// YAML cannot act on: Go types, YAML's internal tags, the decoder's words.
var goWords = []string{
	"sources.Config", "sources.File", "SecretRef", "Locator", "HMACConfig", "[]string", "[]sources",
	"time.Duration", "int64", "*bool", "map[", "struct", "!!str", "!!int", "!!map", "!!seq", "!!bool",
	"unmarshal", "not found in type", "EOF", "yaml:", "(#",
}

const (
	ok        = "{label: current, env: GH_SECRET}"
	emptyWant = "the file holds no YAML (it is empty, or only comments); it should hold a list of sources, such as sources: [{name: stripe, type: stripe, secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]}]"
)

// TestSourcesFileErrorsSayWhereAndWhatInTheFilesTerms: each mistake in a
// sources file is reported with its line, the source by name and the field
// by its path as written, what was wanted in YAML's words, and a guess at
// a misspelt field when one is close; never a Go type, never a secret.
func TestSourcesFileErrorsSayWhereAndWhatInTheFilesTerms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		// Unknown fields, at every level, with a suggestion only when close.
		{"misspelt top-level field", "source:\n  - {name: gh, type: github, secrets: [" + ok + "]}\n",
			`line 1: unknown top-level field "source" (did you mean "sources"?)`},
		{"unrelated top-level field", "apiVersion: v1\nsources: [{name: gh, type: github, secrets: [" + ok + "]}]\n",
			`line 1: unknown top-level field "apiVersion" (the fields here are sources)`},
		{"misspelt source field", "sources:\n  - name: stripe\n    type: stripe\n    tolerence: 5m\n    secrets: [" + ok + "]\n",
			`line 4: sources.stripe: unknown field "tolerence" (did you mean "tolerance"?)`},
		{"source field in another case", "sources:\n  - name: gh\n    type: github\n    maxBodyBytes: 1024\n    secrets: [" + ok + "]\n",
			`line 4: sources.gh: unknown field "maxBodyBytes" (did you mean "max_body_bytes"?)`},
		{"unrelated source field", "sources:\n  - name: gh\n    type: github\n    colour: red\n    secrets: [" + ok + "]\n",
			`line 4: sources.gh: unknown field "colour" (the fields here are name, type, secrets, tolerance, livemode, id, event_type, object, time, max_body_bytes, failure_status, replay_guard, event_types, hmac, allow_ips)`},
		{"misspelt id locator field", "sources:\n  - name: bank\n    type: hmac\n    id: {heder: X-Request-Id}\n    secrets: [" + ok + "]\n",
			`line 4: sources.bank.id: unknown field "heder" (did you mean "header"?)`},
		{"misspelt event_type locator field", "sources:\n  - name: bank\n    type: hmac\n    event_type:\n      jsn: kind\n    secrets: [" + ok + "]\n",
			`line 5: sources.bank.event_type: unknown field "jsn" (did you mean "json"?)`},
		{"misspelt hmac field", "sources:\n  - name: bank\n    type: hmac\n    hmac: {header: X-Sig, algoritm: sha512}\n    secrets: [" + ok + "]\n",
			`line 4: sources.bank.hmac: unknown field "algoritm" (did you mean "algorithm"?)`},
		{"swapped letters in a secret field", "sources:\n  - name: gh\n    type: github\n    secrets:\n      - {lable: current, env: GH_SECRET}\n",
			`line 5: sources.gh.secrets[0]: unknown field "lable" (did you mean "label"?)`},
		{"a secret written inline", "sources:\n  - name: gh\n    type: github\n    secrets:\n      - label: current\n        value: " + planted + "\n",
			`line 6: sources.gh.secrets[0]: unknown field "value": a secret is never written in the sources file; set env to the variable that holds it, or file to its path`},
		{"a secret pasted as a field name", "sources:\n  - name: gh\n    type: github\n    secrets: [" + ok + "]\n    " + planted + ": x\n",
			`line 5: sources.gh: unknown field (its name is not shown, as it might be a secret)`},
		{"a source without a valid name is named by index", "sources:\n  - {name: gh, type: github, secrets: [" + ok + "]}\n  - {name: Bad Name, type: github, tolerence: 5m}\n",
			`line 3: sources[1]: unknown field "tolerence" (did you mean "tolerance"?)`},

		{"a misspelt field merged in with <<", "sources:\n  - <<: {type: github, secrets: [" + ok + "], tolrance: 5m}\n    name: gh\n",
			`line 2: sources.gh: unknown field "tolrance" (did you mean "tolerance"?)`},

		// Values of the wrong kind: what is wanted, never what was there.
		{"text for a whole number", "sources:\n  - name: gh\n    type: github\n    max_body_bytes: lots\n    secrets: [" + ok + "]\n",
			`line 4: sources.gh.max_body_bytes: want a whole number, not text`},
		{"quoted number for a whole number", "sources:\n  - name: gh\n    type: github\n    failure_status: \"401\"\n    secrets: [" + ok + "]\n",
			`line 4: sources.gh.failure_status: want a whole number, not text`},
		{"number without a unit for a duration", "sources:\n  - name: stripe\n    type: stripe\n    tolerance: 300\n    secrets: [" + ok + "]\n",
			`line 4: sources.stripe.tolerance: want a duration such as 5m or 90s, not a number`},
		{"text for true or false", "sources:\n  - name: stripe\n    type: stripe\n    livemode: maybe\n    secrets: [" + ok + "]\n",
			`line 4: sources.stripe.livemode: want true or false, not text`},
		{"list for a mapping", "sources:\n  - name: bank\n    type: hmac\n    id: [X-Request-Id]\n    secrets: [" + ok + "]\n",
			`line 4: sources.bank.id: want a mapping such as {header: X-Request-Id} or {json: data.id}, not a list`},
		{"mapping for text", "sources:\n  - name: {gh: 1}\n    type: github\n    secrets: [" + ok + "]\n",
			`line 2: sources[0].name: want text, not a mapping`},
		{"text for a list", "sources:\n  - name: gh\n    type: github\n    allow_ips: 192.0.2.0/24\n    secrets: [" + ok + "]\n",
			`line 4: sources.gh.allow_ips: want a list such as [one, two], not text`},
		{"a secret for the secrets list", "sources:\n  - name: gh\n    type: github\n    secrets: " + planted + "\n",
			`line 4: sources.gh.secrets: want a list, each item a mapping such as {label: current, env: STRIPE_WEBHOOK_SECRET} or {label: current, file: /run/secrets/stripe}, not text`},
		{"a secret for a secret reference", "sources:\n  - name: gh\n    type: github\n    secrets: [" + planted + "]\n",
			`line 4: sources.gh.secrets[0]: want a mapping such as {label: current, env: STRIPE_WEBHOOK_SECRET} or {label: current, file: /run/secrets/stripe}, not text`},
		{"a list of secrets for env", "sources:\n  - name: gh\n    type: github\n    secrets: [{label: current, env: [" + planted + "]}]\n",
			`line 4: sources.gh.secrets[0].env: want text, not a list`},
		{"sources keyed by name", "sources:\n  stripe:\n    type: stripe\n",
			`line 2: sources: want a list, each item a source such as {name: stripe, type: stripe, secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]}, not a mapping`},

		// Names and keys given twice.
		{"a field set twice", "sources:\n  - name: stripe\n    type: stripe\n    tolerance: 5m\n    tolerance: 2m\n    secrets: [" + ok + "]\n",
			`line 5: sources.stripe: "tolerance" is set twice (first at line 4)`},
		{"a source name declared twice", "sources:\n  - {name: gh, type: github, secrets: [" + ok + "]}\n  - {name: gh, type: shopify, secrets: [" + ok + "]}\n",
			`line 3: sources.gh.name: "gh" is declared twice (first at line 2)`},

		// Files with no sources, and files that are not YAML.
		{"empty file", "", emptyWant},
		{"only comments and blank lines", "# sources go here\n\n   \n", emptyWant},
		{"an empty document", "---\n", emptyWant},
		{"an empty sources list", "sources: []\n",
			`line 1: sources: declares no sources; list at least one, such as sources: [{name: stripe, type: stripe, secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]}]`},
		{"a line of prose with a colon", "Stripe webhook secret: see the vault\n",
			`line 1: unknown top-level field (its name is not shown, as it might be a secret)`},
		{"a sentence", "these are the sources\n",
			`line 1: the file is text, not a mapping; it should hold a list of sources, such as sources: [{name: stripe, type: stripe, secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]}]`},
		{"binary", "PK\x03\x04\x00\x00", `not valid YAML: control characters are not allowed`},
		{"broken YAML", "sources: [{name: gh, type: github\n", `line 1: not valid YAML: did not find expected ',' or '}'`},
		{"a tab in the indentation", "sources:\n  - name: gh\n\ttype: github\n", `line 3: not valid YAML: a tab in the indentation; YAML indents with spaces only`},
		{"the list without its sources key", "- {name: gh, type: github, secrets: [" + ok + "]}\n",
			`line 1: the file is a list; it should be a mapping whose sources: key holds the list (is the sources: line missing?), such as sources: [{name: stripe, type: stripe, secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]}]`},
		{"two documents", "sources: [{name: gh, type: github, secrets: [" + ok + "]}]\n---\nsources: []\n",
			`line 2: a second YAML document begins here (after ---); put every source in the one sources: list`},

		// Values a valid shape can still get wrong are placed the same way.
		{"a secret variable that is not set", "sources:\n  - name: gh\n    type: github\n    secrets:\n      - {label: current, env: NOPE}\n",
			`line 5: sources.gh.secrets[0]: environment variable NOPE is not set`},
		{"a required field left out is placed at its source", "sources:\n  - name: gh\n    type: github\n",
			`line 2: sources.gh.secrets: at least one secret is required`},

		// Several problems: all of the shape's at once, in file order.
		{"several problems", "sources:\n  - name: gh\n    type: github\n    tolerence: 5m\n    max_body_bytes: lots\n    secrets: [{lable: a, env: GH_SECRET}]\n",
			"3 problems:\n" +
				`  line 4: sources.gh: unknown field "tolerence" (did you mean "tolerance"?)` + "\n" +
				`  line 5: sources.gh.max_body_bytes: want a whole number, not text` + "\n" +
				`  line 6: sources.gh.secrets[0]: unknown field "lable" (did you mean "label"?)`},
		{"the first problem of each source", "sources:\n  - {name: a, type: paypal}\n  - {name: b, type: github, failure_status: 500, secrets: [" + ok + "]}\n",
			"2 problems:\n" +
				`  line 2: sources.a.type: unknown type "paypal"; want stripe, github, shopify, slack, standardwebhooks or hmac` + "\n" +
				`  line 3: sources.b.failure_status: 500; want 400, 401 or 403`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.file)
			_, _, err := sources.Load(getenv(secretEnv), path, time.Minute)
			require.Error(t, err)
			require.ErrorIs(t, err, sources.ErrConfig)
			require.Equal(t, "HOOKLINE_SOURCES="+path+": "+tt.want, err.Error())
			msg := strings.TrimPrefix(err.Error(), "HOOKLINE_SOURCES="+path+": ")
			for _, word := range goWords {
				require.NotContains(t, msg, word)
			}
			for _, secret := range append(values(secretEnv), planted) {
				require.NotContains(t, err.Error(), secret)
			}
		})
	}
}

// TestSourcesFileErrorsListAtMostTwentyProblems: a file that is not a
// sources file at all says so in a screenful, not in hundreds of lines.
func TestSourcesFileErrorsListAtMostTwentyProblems(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("sources:\n")
	for range 25 {
		b.WriteString("  - {name: gh, colour: red}\n")
	}
	_, _, err := sources.Load(getenv(secretEnv), writeFile(t, b.String()), time.Minute)
	require.ErrorContains(t, err, ": 25 problems:\n  line 2: sources.gh: unknown field \"colour\"")
	require.Equal(t, 21, strings.Count(err.Error(), "\n"))
	require.True(t, strings.HasSuffix(err.Error(), "\n  and 5 more"), err.Error())
}

// TestSourcesFileAnchorsAreCheckedOnce: anchors and
// merges work as YAML says, and a file of aliases of aliases (a "billion
// laughs") is refused at once rather than expanded.
func TestSourcesFileAnchorsAreCheckedOnce(t *testing.T) {
	t.Parallel()
	_, sums, err := sources.Load(getenv(secretEnv), writeFile(t, `
sources:
  - &gh {name: gh, type: github, secrets: [{label: current, env: GH_SECRET}]}
  - <<: *gh
    name: gh2
    event_types: &types [push, ping]
  - {<<: [*gh], name: gh3, event_types: *types}
`), time.Minute)
	require.NoError(t, err)
	require.Len(t, sums, 3)
	require.Equal(t, []string{"push", "ping"}, sums[2].EventTypes)

	// Each merge of ten merges of the one before: 10^9 mappings, unless
	// each is checked once.
	var b strings.Builder
	b.WriteString("sources:\n  - name: gh\n    type: github\n    secrets: [{label: a, env: GH_SECRET}]\n    <<:\n")
	b.WriteString("      - &m0 {replay_guard: body}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "      - &m%d {<<: [%s]}\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 10), ", "))
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := sources.Load(getenv(secretEnv), writeFile(t, b.String()), time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorContains(t, err, ": cannot be read: document contains excessive aliasing")
	case <-time.After(10 * time.Second):
		t.Fatal("a billion laughs is still being read after 10s")
	}
}
