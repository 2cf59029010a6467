package ops_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/envelope"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/verify"
)

const backfillSecret = "backfill-test-secret"

// bodyKey and typeKey are the receiver's keys (receiver.ReplayGuard.key,
// unexported) for the body and body_and_type guards, written out again.
func bodyKey(body string) []byte {
	k := sha256.Sum256([]byte(body))
	return k[:]
}

func typeKey(eventType, body string) []byte {
	k := sha256.Sum256([]byte(eventType + "\x00" + body))
	return k[:]
}

// backfillEnv is a test database with an ops client on it.
type backfillEnv struct {
	db     *pgtest.DB
	client *ops.Client
}

func newBackfillEnv(t *testing.T) *backfillEnv {
	t.Helper()
	db := pgtest.NewDB(t)
	client, err := ops.New(db.Pool)
	require.NoError(t, err)
	return &backfillEnv{db: db, client: client}
}

// addOld stores an event as a receiver from before the replay guard did:
// no key. It returns the row id.
func (e *backfillEnv) addOld(t *testing.T, source, eventID, eventType, body string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, e.db.Pool.QueryRow(context.Background(), `
		INSERT INTO inbox_events (source, event_id, event_type, payload) VALUES ($1, $2, $3, $4)
		RETURNING id`, source, eventID, eventType, []byte(body)).Scan(&id))
	return id
}

// addKeyed stores an event with a replay key, as a receiver with a guard
// does, and returns the row id.
func (e *backfillEnv) addKeyed(t *testing.T, source, eventID, eventType, body string, key []byte) int64 {
	t.Helper()
	var id int64
	require.NoError(t, e.db.Pool.QueryRow(context.Background(), `
		INSERT INTO inbox_events (source, event_id, event_type, payload, replay_key) VALUES ($1, $2, $3, $4, $5)
		RETURNING id`, source, eventID, eventType, []byte(body), key).Scan(&id))
	return id
}

// key returns the row's replay key, nil if it has none.
func (e *backfillEnv) key(t *testing.T, id int64) []byte {
	t.Helper()
	var k []byte
	require.NoError(t, e.db.Pool.QueryRow(context.Background(), `SELECT replay_key FROM inbox_events WHERE id = $1`, id).Scan(&k))
	return k
}

// keys returns every row's replay key by id, to tell that nothing changed.
func (e *backfillEnv) keys(t *testing.T) map[int64]string {
	t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT id, coalesce(encode(replay_key, 'hex'), 'NULL') FROM inbox_events`)
	require.NoError(t, err)
	out := map[int64]string{}
	var id int64
	var k string
	_, err = pgx.ForEachRow(rows, []any{&id, &k}, func() error { out[id] = k; return nil })
	require.NoError(t, err)
	return out
}

func (e *backfillEnv) backfill(t *testing.T, opts ops.BackfillOpts) ops.BackfillResult {
	t.Helper()
	res, err := e.client.BackfillReplayKeys(context.Background(), opts)
	require.NoError(t, err)
	return res
}

// outcomes is an ingester that records what the real one did.
type outcomes struct {
	ing receiver.Ingester
	mu  sync.Mutex
	got []ingest.Outcome
}

func (o *outcomes) Ingest(ctx context.Context, ev inbox.NewEvent) (ingest.Outcome, error) {
	out, err := o.ing.Ingest(ctx, ev)
	if err == nil {
		o.mu.Lock()
		o.got = append(o.got, out)
		o.mu.Unlock()
	}
	return out, err
}

// guardedReceiver returns a receiver serving source "hooks" with guard:
// HMAC over the body, the id in X-Request-Id and the type in X-Topic (both
// unsigned, as with GitHub and Shopify), storing into e's database.
func (e *backfillEnv) guardedReceiver(t *testing.T, guard receiver.ReplayGuard) (http.Handler, *outcomes) {
	t.Helper()
	v, err := verify.NewHMAC(verify.HMACHeader, []string{backfillSecret})
	require.NoError(t, err)
	rc, err := river.NewClient(riverpgxv5.New(e.db.Pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	src := receiver.Source{
		Name: "hooks", Verifier: v, ReplayGuard: guard,
		Envelope: envelope.Extractor{ID: envelope.Locator{Header: "X-Request-Id"}, Type: envelope.Locator{Header: "X-Topic"}},
	}
	ing := &outcomes{ing: ingest.NewSingle(e.db.Pool, rc)}
	opts := receiver.Options{MaxBodyBytes: 1 << 20, IngestTimeout: 5 * time.Second, RetryAfter: time.Second}
	return receiver.New(slog.New(slog.DiscardHandler), []receiver.Source{src}, ing, nil, opts), ing
}

// deliver sends a signed delivery to h and returns what was stored of it.
func deliver(t *testing.T, h http.Handler, ing *outcomes, eventID, eventType, body string) ingest.Outcome {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/webhooks/hooks", bytes.NewReader([]byte(body)))
	req.Header.Set(verify.HMACHeader, verify.SignHMAC(backfillSecret, []byte(body)))
	req.Header.Set("X-Request-Id", eventID)
	req.Header.Set("X-Topic", eventType)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Less(t, rec.Code, 300, "delivery %s: %s", eventID, rec.Body.String())
	ing.mu.Lock()
	defer ing.mu.Unlock()
	require.NotEmpty(t, ing.got, "delivery %s was not ingested", eventID)
	return ing.got[len(ing.got)-1]
}

func TestBackfillGivesOldRowsTheKeysTheReceiverComputes(t *testing.T) {
	t.Parallel()
	// A non-ASCII type checks that the type is hashed as its UTF-8 bytes.
	const eventType, body = "commande/créée", `{"order":42,"note":"ça"}`
	tests := []struct {
		name     string
		guard    receiver.ReplayGuard
		withType bool
		want     []byte
	}{
		{"Body", receiver.GuardBody, false, bodyKey(body)},
		{"BodyAndType", receiver.GuardBodyAndType, true, typeKey(eventType, body)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newBackfillEnv(t)
			id := e.addOld(t, "hooks", "old-1", eventType, body)

			res := e.backfill(t, ops.BackfillOpts{Source: "hooks", WithType: tt.withType})
			require.Equal(t, int64(1), res.Keyed)
			require.Equal(t, tt.want, e.key(t, id))

			// The receiver's own key meets it: the captured delivery sent
			// again under a new id is refused, and stored once is all.
			h, ing := e.guardedReceiver(t, tt.guard)
			require.Equal(t, ingest.DuplicateBody, deliver(t, h, ing, "new-1", eventType, body))
			if tt.withType {
				require.Equal(t, ingest.Accepted, deliver(t, h, ing, "new-2", "commande/payée", body),
					"body_and_type keys a body once per type")
			}
		})
	}
}

func TestBackfillThenIngestOfTheSameBodyUnderANewIDIsADuplicateBody(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	const body = `{"action":"opened","number":7}`
	e.addOld(t, "hooks", "delivery-1", "pull_request", body)
	e.backfill(t, ops.BackfillOpts{Source: "hooks"})

	rc, err := river.NewClient(riverpgxv5.New(e.db.Pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	out, err := ingest.NewSingle(e.db.Pool, rc).Ingest(context.Background(), inbox.NewEvent{
		Source: "hooks", EventID: "delivery-2", Type: "pull_request", Payload: []byte(body), ReplayKey: bodyKey(body),
	})
	require.NoError(t, err)
	require.Equal(t, ingest.DuplicateBody, out)
}

func TestBackfillKeysTheOldestRowOfABodyAndReportsTheOthers(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	first := e.addOld(t, "hooks", "a", "push", `{"same":1}`)
	unique := e.addOld(t, "hooks", "b", "push", `{"other":1}`)
	again := e.addOld(t, "hooks", "c", "push", `{"same":1}`)
	thrice := e.addOld(t, "hooks", "d", "push", `{"same":1}`)
	// A receiver with the guard stored this body after the upgrade, under a
	// new id, before the backfill gave the older row its key: the newer
	// row keeps the key, and the older one is reported.
	late := e.addOld(t, "hooks", "e", "push", `{"late":1}`)
	holder := e.addKeyed(t, "hooks", "f", "push", `{"late":1}`, bodyKey(`{"late":1}`))

	// Batches of 2: "a" and "c" fall in different batches, "c" and "d" in
	// one.
	res := e.backfill(t, ops.BackfillOpts{Source: "hooks", BatchSize: 2})
	require.Equal(t, int64(2), res.Keyed)
	require.Equal(t, bodyKey(`{"same":1}`), e.key(t, first))
	require.Equal(t, bodyKey(`{"other":1}`), e.key(t, unique))
	require.Nil(t, e.key(t, again))
	require.Nil(t, e.key(t, thrice))
	require.Nil(t, e.key(t, late))

	require.Equal(t, int64(3), res.SharedBody)
	require.Len(t, res.SharedBodyExamples, 3)
	got := map[string]string{}
	for _, s := range res.SharedBodyExamples {
		got[s.EventID] = s.HeldByEventID
	}
	require.Equal(t, map[string]string{"c": "a", "d": "a", "e": "f"}, got)
	require.Equal(t, []int64{again, thrice, late}, []int64{res.SharedBodyExamples[0].ID, res.SharedBodyExamples[1].ID, res.SharedBodyExamples[2].ID})
	require.Equal(t, holder, res.SharedBodyExamples[2].HeldByID)
}

func TestBackfillListsAtMost20SharedBodiesButCountsThemAll(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	for i := range 25 {
		e.addOld(t, "hooks", fmt.Sprintf("evt-%02d", i), "push", `{"same":1}`)
	}
	for _, dry := range []bool{true, false} {
		res := e.backfill(t, ops.BackfillOpts{Source: "hooks", BatchSize: 7, DryRun: dry})
		require.Equal(t, int64(1), res.Keyed, "dry run %v", dry)
		require.Equal(t, int64(24), res.SharedBody, "dry run %v", dry)
		require.Len(t, res.SharedBodyExamples, ops.MaxSharedBodyExamples, "dry run %v", dry)
		require.Equal(t, "evt-01", res.SharedBodyExamples[0].EventID, "in id order")
		require.Equal(t, "evt-00", res.SharedBodyExamples[0].HeldByEventID)
	}
}

func TestBackfillSkipsPrunedRows(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	pruned := e.addOld(t, "hooks", "old", "push", `{"n":1}`)
	_, err := e.db.Pool.Exec(context.Background(), `UPDATE inbox_events SET payload = '', headers = '{}', pruned_at = now() WHERE id = $1`, pruned)
	require.NoError(t, err)
	live := e.addOld(t, "hooks", "new", "push", `{"n":2}`)

	res := e.backfill(t, ops.BackfillOpts{Source: "hooks"})
	require.Equal(t, int64(1), res.Keyed)
	require.Equal(t, int64(1), res.SkippedPruned)
	require.Nil(t, e.key(t, pruned), "an empty payload gets no key")
	require.Equal(t, bodyKey(`{"n":2}`), e.key(t, live))
}

func TestBackfillDryRunChangesNothingAndCountsWhatARunDoes(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	e.addOld(t, "hooks", "a", "push", `{"same":1}`)
	e.addOld(t, "hooks", "b", "push", `{"other":1}`)
	e.addOld(t, "hooks", "c", "push", `{"same":1}`)
	e.addOld(t, "hooks", "d", "push", `{"late":1}`)
	e.addKeyed(t, "hooks", "e", "push", `{"late":1}`, bodyKey(`{"late":1}`))
	pruned := e.addOld(t, "hooks", "f", "push", `{"gone":1}`)
	_, err := e.db.Pool.Exec(context.Background(), `UPDATE inbox_events SET payload = '', pruned_at = now() WHERE id = $1`, pruned)
	require.NoError(t, err)
	before := e.keys(t)

	dry := e.backfill(t, ops.BackfillOpts{Source: "hooks", BatchSize: 1, DryRun: true})
	require.True(t, dry.DryRun)
	require.Equal(t, before, e.keys(t), "a dry run changes nothing")

	run := e.backfill(t, ops.BackfillOpts{Source: "hooks", BatchSize: 1})
	require.False(t, run.DryRun)
	dry.DryRun = false
	require.Equal(t, run, dry, "the dry run counts what the run did")
	require.Equal(t, int64(2), run.Keyed)
	require.Equal(t, int64(2), run.SharedBody)
	require.Equal(t, int64(1), run.SkippedPruned)
}

func TestBackfillASecondRunChangesNothing(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	e.addOld(t, "hooks", "a", "push", `{"same":1}`)
	e.addOld(t, "hooks", "b", "push", `{"same":1}`)
	e.addOld(t, "hooks", "c", "push", `{"other":1}`)
	first := e.backfill(t, ops.BackfillOpts{Source: "hooks"})
	require.Equal(t, int64(2), first.Keyed)
	after := e.keys(t)

	second := e.backfill(t, ops.BackfillOpts{Source: "hooks"})
	require.Zero(t, second.Keyed)
	require.Equal(t, after, e.keys(t))
	require.Equal(t, int64(1), second.SharedBody, "the finding is reported again")
	require.Equal(t, "a", second.SharedBodyExamples[0].HeldByEventID)
}

func TestBackfillLeavesOtherSourcesAlone(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	other := e.addOld(t, "stripe", "evt_1", "charge.succeeded", `{"id":"evt_1"}`)
	mine := e.addOld(t, "hooks", "a", "push", `{"id":"evt_1"}`)

	res := e.backfill(t, ops.BackfillOpts{Source: "hooks"})
	require.Equal(t, int64(1), res.Keyed)
	require.Zero(t, res.SharedBody, "keys are per source")
	require.Nil(t, e.key(t, other))
	require.NotNil(t, e.key(t, mine))
}

func TestBackfillRekeyReplacesKeysOfTheOtherGuard(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	// Stored while the source had the body guard; it now has
	// body_and_type.
	create := e.addKeyed(t, "shop", "a", "products/create", `{"p":1}`, bodyKey(`{"p":1}`))
	update := e.addOld(t, "shop", "b", "products/update", `{"p":1}`)
	current := e.addKeyed(t, "shop", "c", "products/create", `{"p":2}`, typeKey("products/create", `{"p":2}`))

	plain := e.backfill(t, ops.BackfillOpts{Source: "shop", WithType: true})
	require.Equal(t, int64(1), plain.Keyed, "without rekey, only the row with no key")
	require.Equal(t, bodyKey(`{"p":1}`), e.key(t, create))
	require.Equal(t, typeKey("products/update", `{"p":1}`), e.key(t, update))

	dry := e.backfill(t, ops.BackfillOpts{Source: "shop", WithType: true, Rekey: true, DryRun: true})
	res := e.backfill(t, ops.BackfillOpts{Source: "shop", WithType: true, Rekey: true})
	require.Equal(t, int64(1), res.Keyed)
	require.Equal(t, int64(1), res.Rekeyed)
	require.Equal(t, res.Keyed, dry.Keyed)
	require.Equal(t, res.Rekeyed, dry.Rekeyed)
	require.Equal(t, typeKey("products/create", `{"p":1}`), e.key(t, create))
	require.Equal(t, typeKey("products/create", `{"p":2}`), e.key(t, current), "a key of the guard stays")

	again := e.backfill(t, ops.BackfillOpts{Source: "shop", WithType: true, Rekey: true})
	require.Zero(t, again.Keyed)
}

func TestBackfillRacingAReceiverLeavesTheKeyToTheReceiversRow(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := context.Background()
	old := e.addOld(t, "hooks", "old", "push", `{"same":1}`)

	// A receiver is storing the same body under a new id, as ingest does:
	// the key's advisory lock, then the row. It has not committed.
	rx, err := e.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer rx.Rollback(ctx) //nolint:errcheck
	ev := inbox.NewEvent{Source: "hooks", EventID: "new", Type: "push", Payload: []byte(`{"same":1}`), ReplayKey: bodyKey(`{"same":1}`)}
	require.NoError(t, inbox.LockReplayKeys(ctx, rx, []inbox.NewEvent{ev}))
	newRow, created, err := inbox.Insert(ctx, rx, ev)
	require.NoError(t, err)
	require.True(t, created)

	done := make(chan ops.BackfillResult, 1)
	go func() {
		res, err := e.client.BackfillReplayKeys(ctx, ops.BackfillOpts{Source: "hooks"})
		if err != nil {
			t.Errorf("backfill: %v", err)
		}
		done <- res
	}()
	e.waitForLockWait(t, "advisory")
	require.NoError(t, rx.Commit(ctx))

	res := <-done
	require.Zero(t, res.Keyed)
	require.Equal(t, int64(1), res.SharedBody)
	require.Equal(t, newRow.ID, res.SharedBodyExamples[0].HeldByID)
	require.Zero(t, res.Retries, "the lock kept the batch from racing")
	require.Nil(t, e.key(t, old))
}

func TestBackfillRetriesABatchThatAReceiverWithoutTheLocksBeatToAKey(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := context.Background()
	old := e.addOld(t, "hooks", "old", "push", `{"same":1}`)

	// A receiver that takes no advisory lock has stored the body under a
	// new id, uncommitted: the batch's look-up cannot see it, and its
	// update waits on the unique index, then fails when it commits.
	rx, err := e.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer rx.Rollback(ctx) //nolint:errcheck
	newRow, created, err := inbox.Insert(ctx, rx, inbox.NewEvent{
		Source: "hooks", EventID: "new", Type: "push", Payload: []byte(`{"same":1}`), ReplayKey: bodyKey(`{"same":1}`),
	})
	require.NoError(t, err)
	require.True(t, created)

	done := make(chan ops.BackfillResult, 1)
	go func() {
		res, err := e.client.BackfillReplayKeys(ctx, ops.BackfillOpts{Source: "hooks"})
		if err != nil {
			t.Errorf("backfill: %v", err)
		}
		done <- res
	}()
	e.waitForLockWait(t, "transactionid")
	require.NoError(t, rx.Commit(ctx))

	res := <-done
	require.Equal(t, 1, res.Retries)
	require.Zero(t, res.Keyed)
	require.Equal(t, int64(1), res.SharedBody)
	require.Equal(t, newRow.ID, res.SharedBodyExamples[0].HeldByID)
	require.Nil(t, e.key(t, old))
}

// waitForLockWait waits until a session of the test database waits for a
// lock of the kind (pg_stat_activity.wait_event).
func (e *backfillEnv) waitForLockWait(t *testing.T, kind string) {
	t.Helper()
	require.Eventually(t, func() bool {
		// Eventually polls from another goroutine, where require must not
		// stop the test: a failed query polls again.
		var n int
		err := e.db.Pool.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = $1`, kind).Scan(&n)
		return err == nil && n > 0
	}, 10*time.Second, 10*time.Millisecond, "no session waits for a %s lock", kind)
}

func TestBackfillOptsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, ops.BackfillOpts{Source: "hooks"}.Validate())
	require.ErrorContains(t, ops.BackfillOpts{}.Validate(), "source is required")
	require.ErrorContains(t, ops.BackfillOpts{Source: "hooks", BatchSize: -1}.Validate(), "batch size must be positive, not -1")
}
