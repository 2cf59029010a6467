package sources_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/sources"
	"github.com/hookline/hookline/internal/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// provider knows how to sign a delivery the way one provider does.
type provider struct {
	source string
	// deliver builds a signed request for event id, signed with secret at ts.
	deliver func(t *testing.T, secret, id string, ts time.Time) (body []byte, header http.Header)
	// timestamped schemes must refuse old and future timestamps.
	timestamped bool
	// failure is the configured answer to a bad signature.
	failure int
	// idHeader, for schemes that do not sign the id, is the header that
	// carries it: a captured delivery can be sent again with another.
	idHeader string
}

const providersFile = `
sources:
  - {name: stripe, type: stripe, secrets: [{label: current, env: CUR}, {label: previous, env: PREV}]}
  - {name: github, type: github, secrets: [{label: current, env: CUR}, {label: previous, env: PREV}]}
  - {name: shopify, type: shopify, failure_status: 401, secrets: [{label: current, env: CUR}, {label: previous, env: PREV}]}
  - {name: slack, type: slack, secrets: [{label: current, env: CUR}, {label: previous, env: PREV}]}
  - {name: svix, type: standardwebhooks, secrets: [{label: current, env: SVIX_CUR}, {label: previous, env: SVIX_PREV}]}
  - name: bank
    type: hmac
    hmac: {header: X-Signature, prefix: "t=", algorithm: sha512, encoding: base64, timestamp_header: X-Timestamp, template: "{timestamp}.{body}"}
    secrets: [{label: current, env: CUR}, {label: previous, env: PREV}]
`

var providerEnv = map[string]string{
	"CUR": "current-secret", "PREV": "previous-secret",
	// Standard Webhooks secrets are whsec_ + base64 of the key.
	"SVIX_CUR": "whsec_Y3VycmVudC1zZWNyZXQ=", "SVIX_PREV": "whsec_cHJldmlvdXMtc2VjcmV0",
}

var bankHMAC = verify.HMACOptions{Header: "X-Signature", Prefix: "t=", Algorithm: "sha512", Encoding: "base64", TimestampHeader: "X-Timestamp", Template: "{timestamp}.{body}"}

var providers = []provider{
	{source: "stripe", timestamped: true, failure: 400, deliver: func(t *testing.T, secret, id string, ts time.Time) ([]byte, http.Header) {
		body := fmt.Appendf(nil, `{"id":%q,"type":"charge.succeeded","api_version":"2024-06-20"}`, id)
		return body, http.Header{"Stripe-Signature": {verify.SignStripe(secret, body, ts)}}
	}},
	{source: "github", failure: 400, idHeader: "X-Github-Delivery", deliver: func(t *testing.T, secret, id string, _ time.Time) ([]byte, http.Header) {
		body := fmt.Appendf(nil, `{"zen":"Design for failure.","hook_id":%q}`, id)
		return body, http.Header{"X-Hub-Signature-256": {verify.SignGitHub(secret, body)}, "X-Github-Delivery": {id}, "X-Github-Event": {"ping"}}
	}},
	{source: "shopify", failure: 401, idHeader: "X-Shopify-Webhook-Id", deliver: func(t *testing.T, secret, id string, _ time.Time) ([]byte, http.Header) {
		body := fmt.Appendf(nil, `{"id":820982911946154500,"email":"jon@example.com","note":%q}`, id)
		return body, http.Header{"X-Shopify-Hmac-Sha256": {verify.SignShopify(secret, body)}, "X-Shopify-Webhook-Id": {id}, "X-Shopify-Topic": {"orders/create"}}
	}},
	{source: "slack", timestamped: true, failure: 400, deliver: func(t *testing.T, secret, id string, ts time.Time) ([]byte, http.Header) {
		body := fmt.Appendf(nil, `{"type":"event_callback","event_id":%q,"event":{"type":"app_mention"}}`, id)
		sig, tsHeader := verify.SignSlack(secret, ts, body)
		return body, http.Header{"X-Slack-Signature": {sig}, "X-Slack-Request-Timestamp": {tsHeader}}
	}},
	{source: "svix", timestamped: true, failure: 400, deliver: func(t *testing.T, secret, id string, ts time.Time) ([]byte, http.Header) {
		body := []byte(`{"type":"invoice.paid","data":{}}`)
		key := map[string]string{"current-secret": providerEnv["SVIX_CUR"], "previous-secret": providerEnv["SVIX_PREV"], "wrong": "whsec_d3Jvbmc="}[secret]
		sig, err := verify.SignStandardWebhooks(key, id, ts, body)
		require.NoError(t, err)
		// Svix's own header names, which the scheme also accepts.
		return body, http.Header{"Svix-Id": {id}, "Svix-Timestamp": {strconv.FormatInt(ts.Unix(), 10)}, "Svix-Signature": {sig}}
	}},
	{source: "bank", timestamped: true, failure: 400, deliver: func(t *testing.T, secret, id string, ts time.Time) ([]byte, http.Header) {
		body := fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled"}`, id)
		sig, tsHeader, err := verify.SignHMACWith(secret, bankHMAC, ts, body)
		require.NoError(t, err)
		return body, http.Header{"X-Signature": {sig}, "X-Timestamp": {tsHeader}}
	}},
}

type providerBundle struct {
	db  *pgtest.DB
	url string
}

func setupProviders(t *testing.T) *providerBundle {
	t.Helper()
	db := pgtest.NewDB(t)
	srcs, _, err := sources.Load(getenv(providerEnv), writeFile(t, providersFile), time.Minute)
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: logger})
	require.NoError(t, err)
	h := receiver.New(logger, srcs, ingest.NewSingle(db.Pool, rc), db.Pool, receiver.Options{
		MaxBodyBytes: 1 << 20, IngestTimeout: 5 * time.Second, RetryAfter: time.Second,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &providerBundle{db: db, url: srv.URL}
}

func (b *providerBundle) post(t *testing.T, source string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.url+"/api/webhooks/"+source, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

func (b *providerBundle) stored(t *testing.T, source string) (events, jobs int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM inbox_events WHERE source = $1`, source).Scan(&events))
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'source' = $1`, source).Scan(&jobs))
	return events, jobs
}

func TestProvidersThroughTheReceiver(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	now := time.Now()
	for _, p := range providers {
		t.Run(p.source, func(t *testing.T) {
			t.Parallel()
			id := func(s string) string { return p.source + "_" + s }

			t.Run("good delivery is stored with its provider's key", func(t *testing.T) {
				body, h := p.deliver(t, "current-secret", id("good"), now)
				status, answer := b.post(t, p.source, body, h)
				require.Equal(t, http.StatusOK, status, answer)
				var n int
				require.NoError(t, b.db.Pool.QueryRow(context.Background(),
					`SELECT count(*) FROM inbox_events WHERE source = $1 AND event_id = $2 AND event_type <> ''`, p.source, id("good")).Scan(&n))
				require.Equal(t, 1, n)
			})
			t.Run("tampered body is refused", func(t *testing.T) {
				body, h := p.deliver(t, "current-secret", id("tampered"), now)
				status, answer := b.post(t, p.source, append(body, ' '), h)
				require.Equal(t, p.failure, status, answer)
				require.JSONEq(t, `{"error":"Invalid signature"}`, answer)
			})
			t.Run("wrong secret is refused", func(t *testing.T) {
				body, h := p.deliver(t, "wrong", id("wrong"), now)
				status, _ := b.post(t, p.source, body, h)
				require.Equal(t, p.failure, status)
			})
			if p.timestamped {
				t.Run("old timestamp is refused", func(t *testing.T) {
					body, h := p.deliver(t, "current-secret", id("old"), now.Add(-10*time.Minute))
					status, _ := b.post(t, p.source, body, h)
					require.Equal(t, p.failure, status)
				})
				t.Run("future timestamp is refused", func(t *testing.T) {
					body, h := p.deliver(t, "current-secret", id("future"), now.Add(10*time.Minute))
					status, _ := b.post(t, p.source, body, h)
					require.Equal(t, p.failure, status)
				})
			}
			t.Run("previous secret passes during rotation", func(t *testing.T) {
				body, h := p.deliver(t, "previous-secret", id("rotated"), now)
				status, answer := b.post(t, p.source, body, h)
				require.Equal(t, http.StatusOK, status, answer)
			})
			t.Run("duplicate keyed by the provider's id is stored once", func(t *testing.T) {
				for range 3 {
					body, h := p.deliver(t, "current-secret", id("dup"), time.Now())
					status, answer := b.post(t, p.source, body, h)
					require.Equal(t, http.StatusOK, status, answer)
				}
				var n int
				require.NoError(t, b.db.Pool.QueryRow(context.Background(),
					`SELECT count(*) FROM inbox_events WHERE source = $1 AND event_id = $2`, p.source, id("dup")).Scan(&n))
				require.Equal(t, 1, n)
			})
			if p.idHeader != "" {
				t.Run("a captured delivery sent again under a new id is not stored", func(t *testing.T) {
					body, h := p.deliver(t, "current-secret", id("captured"), time.Now())
					status, answer := b.post(t, p.source, body, h)
					require.Equal(t, http.StatusOK, status, answer)
					for i := range 3 {
						h.Set(p.idHeader, id(fmt.Sprintf("forged%d", i)))
						status, answer := b.post(t, p.source, body, h)
						require.Equal(t, http.StatusOK, status, answer)
					}
					var n int
					require.NoError(t, b.db.Pool.QueryRow(context.Background(),
						`SELECT count(*) FROM inbox_events WHERE source = $1 AND payload = $2`, p.source, body).Scan(&n))
					require.Equal(t, 1, n)
				})
			}
		})
	}
}

func TestSlackURLVerificationIsAnsweredAndNotStored(t *testing.T) {
	t.Parallel()
	b := setupProviders(t)
	body := []byte(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	sig, ts := verify.SignSlack("current-secret", time.Now(), body)
	status, answer := b.post(t, "slack", body, http.Header{"X-Slack-Signature": {sig}, "X-Slack-Request-Timestamp": {ts}})
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}`, answer)
	events, _ := b.stored(t, "slack")
	require.Zero(t, events)

	// An unsigned challenge gets nothing back.
	status, answer = b.post(t, "slack", body, http.Header{"X-Slack-Signature": {"v0=00"}, "X-Slack-Request-Timestamp": {ts}})
	require.Equal(t, http.StatusBadRequest, status)
	require.NotContains(t, answer, "3eZbrw")
}
