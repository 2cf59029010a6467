package receiver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/httpserver"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/shed"
	"github.com/hookline/hookline/internal/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	stripeSecret    = "whsec_test_current"
	stripeOldSecret = "whsec_test_previous"
	bankSecret      = "bank_test_current"
	bankOldSecret   = "bank_test_previous"
	maxBody         = 4096
)

type testBundle struct {
	db      *pgtest.DB
	logs    *logtest.Buffer
	url     string
	limiter *shed.Limiter
}

type setupOpts struct {
	// unreachableDB points the receiver's pool at a port nobody listens on.
	unreachableDB bool
	// batch ingests with group commit instead of a transaction per request.
	batch bool
	// shed installs a shed limiter, refreshed by the test.
	shed bool
	// timeouts, if set, are the server's, as httpserver.New sets them.
	timeouts *httpserver.Timeouts
}

// setup starts a receiver over real HTTP on a fresh database.
func setup(t *testing.T, opts setupOpts) *testBundle {
	t.Helper()
	db := pgtest.NewDB(t)
	pool := db.Pool
	if opts.unreachableDB {
		var err error
		pool, err = pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?connect_timeout=2")
		require.NoError(t, err)
		t.Cleanup(pool.Close)
	}
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: logger})
	require.NoError(t, err)

	stripeV, err := verify.NewStripe([]string{stripeSecret, stripeOldSecret}, 5*time.Minute)
	require.NoError(t, err)
	bankV, err := verify.NewHMAC(verify.HMACHeader, []string{bankSecret, bankOldSecret})
	require.NoError(t, err)
	sources := []receiver.Source{
		{Name: "stripe", Verifier: stripeV, KeepHeaders: []string{verify.StripeHeader}},
		{Name: "bank", Verifier: bankV, KeepHeaders: []string{verify.HMACHeader}},
	}
	var ing receiver.Ingester = ingest.NewSingle(pool, rc)
	if opts.batch {
		b := ingest.NewBatcher(pool, rc, logger, ingest.BatchOptions{MaxWait: time.Millisecond})
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		ing = b
	}
	ro := receiver.Options{MaxBodyBytes: maxBody, IngestTimeout: 5 * time.Second, RetryAfter: 7 * time.Second}
	var limiter *shed.Limiter
	if opts.shed {
		limiter = shed.NewLimiter()
		ro.Shed = limiter
	}
	h := receiver.New(logger, sources, ing, pool, ro)
	srv := httptest.NewUnstartedServer(h)
	if opts.timeouts != nil {
		real := httpserver.New("", h, *opts.timeouts)
		srv.Config.ReadHeaderTimeout, srv.Config.ReadTimeout = real.ReadHeaderTimeout, real.ReadTimeout
		srv.Config.WriteTimeout, srv.Config.IdleTimeout = real.WriteTimeout, real.IdleTimeout
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &testBundle{db: db, logs: logs, url: srv.URL, limiter: limiter}
}

func stripeEvent(id, apiVersion, customer string, amount int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":%q,"type":"charge.succeeded","data":{"object":{"amount":%d,"customer":%q}}}`,
		id, apiVersion, amount, customer)
}

func bankEvent(id string, cents int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled","account":"acc_9","amount_cents":%d}`, id, cents)
}

type response struct {
	status int
	body   string
	header http.Header
}

func post(t *testing.T, url string, body []byte, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}
}

func (b *testBundle) postStripe(t *testing.T, body []byte, secret string) response {
	t.Helper()
	return post(t, b.url+"/api/webhooks/stripe", body,
		http.Header{verify.StripeHeader: {verify.SignStripe(secret, body, time.Now())}})
}

func (b *testBundle) postBank(t *testing.T, body []byte, secret string) response {
	t.Helper()
	return post(t, b.url+"/api/webhooks/bank", body,
		http.Header{verify.HMACHeader: {verify.SignHMAC(secret, body)}})
}

// counts returns the number of inbox rows and River jobs.
func (b *testBundle) counts(t *testing.T) (events, jobs int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM inbox_events`).Scan(&events))
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job`).Scan(&jobs))
	return events, jobs
}

func requireReceived(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.JSONEq(t, `{"received":true}`, r.body)
}

func requireError(t *testing.T, r response, status int, msg string) {
	t.Helper()
	require.Equal(t, status, r.status, r.body)
	var got struct{ Error string }
	require.NoError(t, json.Unmarshal([]byte(r.body), &got), r.body)
	require.Contains(t, got.Error, msg)
	requireErrorStyle(t, got.Error)
}

// requireErrorStyle checks the one style of every error message a sender
// reads: a sentence that starts with a capital and has no final stop.
func requireErrorStyle(t *testing.T, msg string) {
	t.Helper()
	require.Regexp(t, `^[A-Z].*[^.]$`, msg, "error messages are sentences with a capital and no final stop")
}

func TestWebhookStoresVerifiedEventWithItsJobAndAnswers200(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	body := stripeEvent("evt_stored", "2023-10-16", "cus_1", 2000)

	requireReceived(t, b.postStripe(t, body, stripeSecret))

	var (
		payload           []byte
		eventType, apiVer string
		headers           map[string]string
		inboxID           int64
	)
	err := b.db.Pool.QueryRow(context.Background(), `
		SELECT id, payload, event_type, api_version, headers FROM inbox_events
		WHERE source = 'stripe' AND event_id = 'evt_stored'`).Scan(&inboxID, &payload, &eventType, &apiVer, &headers)
	require.NoError(t, err)
	require.Equal(t, body, payload, "payload must be stored byte-exact")
	require.Equal(t, "charge.succeeded", eventType)
	require.Equal(t, "2023-10-16", apiVer)
	require.Contains(t, headers, verify.StripeHeader)

	var args struct {
		InboxID int64  `json:"inbox_id"`
		Source  string `json:"source"`
		EventID string `json:"event_id"`
	}
	var rawArgs []byte
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT args FROM river_job WHERE kind = 'process_event'`).Scan(&rawArgs))
	require.NoError(t, json.Unmarshal(rawArgs, &args))
	require.Equal(t, inboxID, args.InboxID)
	require.Equal(t, "stripe", args.Source)
	require.Equal(t, "evt_stored", args.EventID)
	require.NotContains(t, string(rawArgs), "cus_1", "job args must not carry the payload")
}

func TestWebhookRejectsInvalidSignaturesAndStoresNothing(t *testing.T) {
	t.Parallel()
	stripeBody := stripeEvent("evt_bad", "2023-10-16", "cus_1", 100)
	bankBody := bankEvent("tr_bad", 100)
	stripeSig := verify.SignStripe(stripeSecret, stripeBody, time.Now())

	tests := []struct {
		name   string
		path   string
		body   []byte
		header http.Header
	}{
		{"stripe tampered body", "stripe", bytes.Replace(stripeBody, []byte("100"), []byte("999"), 1), http.Header{verify.StripeHeader: {stripeSig}}},
		{"stripe wrong secret", "stripe", stripeBody, http.Header{verify.StripeHeader: {verify.SignStripe("whsec_wrong", stripeBody, time.Now())}}},
		{"stripe missing header", "stripe", stripeBody, nil},
		{"stripe stale timestamp", "stripe", stripeBody, http.Header{verify.StripeHeader: {verify.SignStripe(stripeSecret, stripeBody, time.Now().Add(-6*time.Minute))}}},
		{"stripe malformed header", "stripe", stripeBody, http.Header{verify.StripeHeader: {"garbage"}}},
		{"stripe non-JSON body with bad signature", "stripe", []byte("not json at all"), http.Header{verify.StripeHeader: {stripeSig}}},
		{"bank tampered body", "bank", bytes.Replace(bankBody, []byte("100"), []byte("999"), 1), http.Header{verify.HMACHeader: {verify.SignHMAC(bankSecret, bankBody)}}},
		{"bank wrong secret", "bank", bankBody, http.Header{verify.HMACHeader: {verify.SignHMAC("wrong", bankBody)}}},
		{"bank missing header", "bank", bankBody, nil},
		{"bank non-hex header", "bank", bankBody, http.Header{verify.HMACHeader: {"zz" + strings.Repeat("0", 62)}}},
		{"bank non-JSON body with bad signature", "bank", []byte("<xml/>"), http.Header{verify.HMACHeader: {verify.SignHMAC("wrong", []byte("<xml/>"))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			r := post(t, b.url+"/api/webhooks/"+tt.path, tt.body, tt.header)
			require.Equal(t, http.StatusBadRequest, r.status, r.body)
			require.JSONEq(t, `{"error":"Invalid signature"}`, r.body, "the answer must not say which part failed")
			events, jobs := b.counts(t)
			require.Zero(t, events)
			require.Zero(t, jobs)
		})
	}
}

func TestWebhookRejectsMalformedSignedBodiesWithClearMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		msg  string
	}{
		{"not JSON", `this is not json`, "not a JSON object"},
		{"JSON array", `[1,2]`, "not a JSON object"},
		{"no id", `{"type":"transfer.settled"}`, "missing id"},
		{"empty id", `{"id":""}`, "missing id"},
		{"numeric id", `{"id":42}`, "id (JSON field id) must be a string"},
		{"id too long", `{"id":"` + strings.Repeat("x", 256) + `"}`, "more than 255"},
		{"id with NUL", `{"id":"a\u0000b"}`, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			requireError(t, b.postBank(t, []byte(tt.body), bankSecret), http.StatusBadRequest, tt.msg)
			events, jobs := b.counts(t)
			require.Zero(t, events)
			require.Zero(t, jobs)
		})
	}
}

func TestWebhookDuplicateGets200AndNoSecondJob(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	body := bankEvent("tr_dup", 500)

	requireReceived(t, b.postBank(t, body, bankSecret))
	requireReceived(t, b.postBank(t, body, bankSecret))

	events, jobs := b.counts(t)
	require.Equal(t, 1, events)
	require.Equal(t, 1, jobs)
	require.Contains(t, b.logs.String(), `"outcome":"duplicate"`)
}

var modes = []struct {
	name  string
	batch bool
}{{"single", false}, {"batch", true}}

func TestWebhookConcurrentDeliveriesOfOneEventGiveOneRowAndOneJob(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			testConcurrentDeliveries(t, setup(t, setupOpts{batch: mode.batch}))
		})
	}
}

func testConcurrentDeliveries(t *testing.T, b *testBundle) {
	body := stripeEvent("evt_storm", "2023-10-16", "cus_storm", 100)

	var wg sync.WaitGroup
	statuses := make([]int, 50)
	for i := range statuses {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, b.url+"/api/webhooks/stripe", bytes.NewReader(body))
			req.Header.Set(verify.StripeHeader, verify.SignStripe(stripeSecret, body, time.Now()))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, s := range statuses {
		require.Equal(t, http.StatusOK, s, "delivery %d", i)
	}
	events, jobs := b.counts(t)
	require.Equal(t, 1, events)
	require.Equal(t, 1, jobs)
}

func TestWebhookSameEventIDFromTwoSourcesIsTwoEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	requireReceived(t, b.postStripe(t, stripeEvent("shared_1", "2023-10-16", "c", 1), stripeSecret))
	requireReceived(t, b.postBank(t, bankEvent("shared_1", 1), bankSecret))
	events, jobs := b.counts(t)
	require.Equal(t, 2, events)
	require.Equal(t, 2, jobs)
}

func TestWebhookAcceptsEverySecretInTheRotationList(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	requireReceived(t, b.postStripe(t, stripeEvent("evt_new_secret", "2023-10-16", "c", 1), stripeSecret))
	requireReceived(t, b.postStripe(t, stripeEvent("evt_old_secret", "2023-10-16", "c", 1), stripeOldSecret))
	requireReceived(t, b.postBank(t, bankEvent("tr_new_secret", 1), bankSecret))
	requireReceived(t, b.postBank(t, bankEvent("tr_old_secret", 1), bankOldSecret))
	events, _ := b.counts(t)
	require.Equal(t, 4, events)
}

func TestWebhookAcceptsStripeEventOfAnotherAPIVersion(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	requireReceived(t, b.postStripe(t, stripeEvent("evt_old_api", "2019-02-19", "cus_1", 1), stripeSecret))
	var apiVer string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT api_version FROM inbox_events WHERE event_id = 'evt_old_api'`).Scan(&apiVer))
	require.Equal(t, "2019-02-19", apiVer)
}

func TestWebhookRejectsBodyOverLimitWith413(t *testing.T) {
	t.Parallel()
	big := bankEvent("tr_big", 1)
	big = append(big[:len(big)-1], []byte(`,"pad":"`+strings.Repeat("x", maxBody)+`"}`)...)

	t.Run("with Content-Length", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		requireError(t, b.postBank(t, big, bankSecret), http.StatusRequestEntityTooLarge, "larger than the limit of 4096 bytes")
		events, _ := b.counts(t)
		require.Zero(t, events)
	})
	t.Run("chunked, without Content-Length", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		// A reader of unknown length makes the client send chunked encoding.
		req, err := http.NewRequest(http.MethodPost, b.url+"/api/webhooks/bank", io.MultiReader(bytes.NewReader(big)))
		require.NoError(t, err)
		req.Header.Set(verify.HMACHeader, verify.SignHMAC(bankSecret, big))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Zero(t, req.ContentLength, "unknown length: the client sends the body chunked")
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		events, _ := b.counts(t)
		require.Zero(t, events)
	})
}

func TestWebhookAnswers503WithRetryAfterWhenDatabaseIsUnreachable(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{unreachableDB: true, batch: mode.batch})
			r := b.postBank(t, bankEvent("tr_nodb", 1), bankSecret)
			requireError(t, r, http.StatusServiceUnavailable, "retry later")
			require.Equal(t, "7", r.header.Get("Retry-After"))
			require.Contains(t, b.logs.String(), `"outcome":"unavailable"`)
		})
	}
}

func TestWebhookLogsAnUnreachableDatabaseOnceNotOnEveryRequest(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{unreachableDB: true, batch: mode.batch})
			for i := range 5 {
				r := b.postBank(t, bankEvent(fmt.Sprintf("tr_down_%d", i), 1), bankSecret)
				require.Equal(t, http.StatusServiceUnavailable, r.status)
			}
			logs := b.logs.String()
			require.Equal(t, 5, strings.Count(logs, `"outcome":"unavailable"`), "every request keeps its line:\n%s", logs)
			require.Equal(t, 1, strings.Count(logs, `"msg":"could not store event"`), "the error is logged once a minute:\n%s", logs)
			if mode.batch {
				require.Equal(t, 1, strings.Count(logs, `"msg":"batch failed; answering its requests 503"`), logs)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})

	get := func(path string) int {
		resp, err := http.Get(b.url + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get("/healthz"))
	require.Equal(t, http.StatusOK, get("/readyz"))
	require.Equal(t, http.StatusMethodNotAllowed, get("/api/webhooks/stripe"))
	requireError(t, post(t, b.url+"/api/webhooks/paypal", []byte(`{}`), nil), http.StatusNotFound, "Unknown source")
	require.Equal(t, http.StatusNotFound, post(t, b.url+"/api/webhooks/..%2F..%2Fetc", []byte(`{}`), nil).status)

	t.Run("readyz fails while the database is unreachable", func(t *testing.T) {
		t.Parallel()
		down := setup(t, setupOpts{unreachableDB: true})
		resp, err := http.Get(down.url + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		resp, err = http.Get(down.url + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "liveness must not depend on the database")
	})
}

func TestWebhookLogsOneLinePerRequestWithoutSecretsOrBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	body := bankEvent("tr_logged", 4242)
	requireReceived(t, b.postBank(t, body, bankSecret))
	b.postBank(t, body, "wrong-secret")

	logs := b.logs.String()
	lines := strings.Count(logs, `"msg":"request"`)
	require.Equal(t, 2, lines, logs)
	require.Contains(t, logs, `"event_id":"tr_logged"`)
	require.Contains(t, logs, `"reason":"no_match"`)
	require.Contains(t, logs, `"secrets_tried":"2"`)
	sum := sha256.Sum256(body)
	require.Contains(t, logs, `"body_sha256":"`+hex.EncodeToString(sum[:])+`"`, "a failure names the body by digest")
	for _, secret := range []string{bankSecret, bankOldSecret, stripeSecret, "wrong-secret", "4242", verify.SignHMAC(bankSecret, body)} {
		require.NotContains(t, logs, secret)
	}
}

func TestWebhookShedAnswers429UntilLifted(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{shed: true})
	ctx := context.Background()
	require.NoError(t, shed.Set(ctx, b.db.Pool, "bank", 1, "test"))
	require.NoError(t, b.limiter.Refresh(ctx, b.db.Pool))

	requireReceived(t, b.postBank(t, bankEvent("tr_shed_1", 1), bankSecret))
	r := b.postBank(t, bankEvent("tr_shed_2", 1), bankSecret)
	requireError(t, r, http.StatusTooManyRequests, "retry later")
	require.Equal(t, "7", r.header.Get("Retry-After"))
	requireReceived(t, b.postStripe(t, stripeEvent("evt_not_shed", "2023-10-16", "c", 1), stripeSecret))

	require.NoError(t, shed.Set(ctx, b.db.Pool, "bank", -1, "test"))
	require.NoError(t, b.limiter.Refresh(ctx, b.db.Pool))
	requireReceived(t, b.postBank(t, bankEvent("tr_shed_2", 1), bankSecret))
	events, _ := b.counts(t)
	require.Equal(t, 3, events, "the shed event was not stored; its retry was")
}

// TestWebhookAnswersTheSameBytesWithAndWithoutAQueryString: the 200's body
// and content type are exactly what echo's JSON encoder writes, whether
// the fast path answers (no query string) or echo does (?pretty indents).
func TestWebhookAnswersTheSameBytesWithAndWithoutAQueryString(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	body := []byte(`{"id":"tr_bytes","type":"transfer.settled"}`)
	r := b.postBank(t, body, bankSecret)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "{\"received\":true}\n", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))

	body = []byte(`{"id":"tr_pretty","type":"transfer.settled"}`)
	r = post(t, b.url+"/api/webhooks/bank?pretty", body, http.Header{verify.HMACHeader: {verify.SignHMAC(bankSecret, body)}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "{\n  \"received\": true\n}\n", r.body, "echo still indents on ?pretty")
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
}
