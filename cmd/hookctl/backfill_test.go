package main

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/ops"
)

// guardSources declares a source of each guard: github (body, by
// default for its header id), shopify (body_and_type) and stripe (off: its
// signature covers the id).
const guardSources = `sources:
  - {name: github, type: github, secrets: [{label: current, env: HOOK_SECRET}]}
  - {name: shopify, type: shopify, event_types: [products/create, products/update], secrets: [{label: current, env: HOOK_SECRET}]}
  - {name: stripe, type: stripe, secrets: [{label: current, env: HOOK_SECRET}]}
`

// withSources returns b with HOOKLINE_SOURCES naming a file holding yaml,
// and the secret it names set.
func (b *testBundle) withSources(t *testing.T, yaml string) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return &testBundle{db: b.db, river: b.river, getenv: b.withEnv(map[string]string{
		"HOOKLINE_SOURCES": path, "HOOK_SECRET": "not-a-real-secret-for-tests",
	})}
}

// addUnkeyed stores an event as receivers did before the replay guard:
// without a key. It returns the row id.
func (b *testBundle) addUnkeyed(t *testing.T, source, eventID, eventType, body string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `
		INSERT INTO inbox_events (source, event_id, event_type, payload) VALUES ($1, $2, $3, $4)
		RETURNING id`, source, eventID, eventType, []byte(body)).Scan(&id))
	return id
}

func (b *testBundle) replayKey(t *testing.T, id int64) []byte {
	t.Helper()
	var k []byte
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT replay_key FROM inbox_events WHERE id = $1`, id).Scan(&k))
	return k
}

// receiverKey is receiver.ReplayGuard's key (unexported), written out
// again: sha256 of the body, or of the type, a NUL and the body.
func receiverKey(eventType, body string) []byte {
	s := body
	if eventType != "" {
		s = eventType + "\x00" + body
	}
	k := sha256.Sum256([]byte(s))
	return k[:]
}

func TestBackfillReplayKeysKeysEveryGuardedSourceAsTheReceiverDoesAndNoOther(t *testing.T) {
	t.Parallel()
	b := setup(t).withSources(t, guardSources)
	gh := b.addUnkeyed(t, "github", "d-1", "push", `{"ref":"main"}`)
	shop := b.addUnkeyed(t, "shopify", "w-1", "products/update", `{"id":7}`)
	stripe := b.addUnkeyed(t, "stripe", "evt_1", "charge.succeeded", `{"id":"evt_1"}`)

	var res []ops.BackfillResult
	b.hookctlJSON(t, &res, "backfill-replay-keys", "--json")
	require.Len(t, res, 2)
	require.Equal(t, "github", res[0].Source)
	require.Equal(t, "body", res[0].Guard)
	require.Equal(t, int64(1), res[0].Keyed)
	require.Equal(t, "shopify", res[1].Source)
	require.Equal(t, "body_and_type", res[1].Guard)
	require.Equal(t, int64(1), res[1].Keyed)

	require.Equal(t, receiverKey("", `{"ref":"main"}`), b.replayKey(t, gh))
	require.Equal(t, receiverKey("products/update", `{"id":7}`), b.replayKey(t, shop))
	require.Nil(t, b.replayKey(t, stripe), "stripe has no guard")

	// The delivery captured before the upgrade, sent again under a new id
	// with the key the receiver computes, is now refused.
	out, err := ingest.NewSingle(b.db.Pool, b.river).Ingest(context.Background(), inbox.NewEvent{
		Source: "github", EventID: "d-2", Type: "push", Payload: []byte(`{"ref":"main"}`), ReplayKey: receiverKey("", `{"ref":"main"}`),
	})
	require.NoError(t, err)
	require.Equal(t, ingest.DuplicateBody, out)
}

func TestBackfillReplayKeysReportsEventsSharingABodyWithTheOneHoldingTheKey(t *testing.T) {
	t.Parallel()
	b := setup(t).withSources(t, guardSources)
	first := b.addUnkeyed(t, "github", "d-1", "push", `{"ref":"main"}`)
	again := b.addUnkeyed(t, "github", "d-2", "push", `{"ref":"main"}`)
	pruned := b.addUnkeyed(t, "github", "d-3", "push", `{"ref":"dev"}`)
	b.exec(t, `UPDATE inbox_events SET payload = '', pruned_at = now() WHERE id = $1`, pruned)

	stdout, stderr, err := b.hookctl(t, "backfill-replay-keys", "--source", "github")
	require.NoError(t, err, "stderr: %s", stderr)
	require.Contains(t, stdout, "github (replay_guard body): keyed 1 events; 1 pruned events skipped")
	require.Contains(t, stdout, "warning: github: 1 events share their body with another event, which holds the key")
	require.Regexp(t, `github/d-2 \(id \d+, received .+\) has the body of github/d-1 \(id \d+, received .+\)`, stdout)
	require.NotContains(t, stdout, "shopify", "--source picks one")
	require.NotContains(t, stdout, "stripe")
	require.NotNil(t, b.replayKey(t, first))
	require.Nil(t, b.replayKey(t, again))
	require.Nil(t, b.replayKey(t, pruned))
}

func TestBackfillReplayKeysDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t).withSources(t, guardSources)
	id := b.addUnkeyed(t, "shopify", "w-1", "products/create", `{"id":7}`)

	stdout, stderr, err := b.hookctl(t, "backfill-replay-keys", "--dry-run")
	require.NoError(t, err, "stderr: %s", stderr)
	require.Contains(t, stdout, "dry run, nothing changed: shopify (replay_guard body_and_type): would key 1 events")
	require.Contains(t, stdout, "stripe: replay_guard off, skipped")
	require.Nil(t, b.replayKey(t, id))
}

func TestBackfillReplayKeysASecondRunKeysNothing(t *testing.T) {
	t.Parallel()
	b := setup(t).withSources(t, guardSources)
	id := b.addUnkeyed(t, "github", "d-1", "push", `{"ref":"main"}`)
	var first, second []ops.BackfillResult
	b.hookctlJSON(t, &first, "backfill-replay-keys", "--json", "--batch", "1")
	key := b.replayKey(t, id)
	b.hookctlJSON(t, &second, "backfill-replay-keys", "--json", "--batch", "1")
	require.Equal(t, int64(1), first[0].Keyed)
	require.Zero(t, second[0].Keyed)
	require.Zero(t, second[1].Keyed)
	require.Equal(t, key, b.replayKey(t, id))
}

func TestBackfillReplayKeysRefusesASourceWithoutAGuardOrUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t).withSources(t, guardSources)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoGuard", []string{"--source", "stripe"}, `source "stripe" has no replay guard`},
		{"Unknown", []string{"--source", "gitlab"}, `source "gitlab" is not configured; the sources are github, shopify, stripe`},
		{"ZeroBatch", []string{"--batch", "0"}, "--batch must be positive, not 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := b.hookctl(t, append([]string{"backfill-replay-keys"}, tt.args...)...)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestBackfillReplayKeysWithNoGuardedSourceDoesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t).withSources(t, `sources:
  - {name: stripe, type: stripe, secrets: [{label: current, env: HOOK_SECRET}]}
`)
	id := b.addUnkeyed(t, "stripe", "evt_1", "charge.succeeded", `{"id":"evt_1"}`)
	stdout, stderr, err := b.hookctl(t, "backfill-replay-keys")
	require.NoError(t, err, "stderr: %s", stderr)
	require.Contains(t, stdout, "no source has a replay guard")
	require.Nil(t, b.replayKey(t, id))
}
