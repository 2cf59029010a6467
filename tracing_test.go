package hookline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline"
	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/verify"
)

const traceStripeSecret = "whsec_trace_test_secret"

// tracedPipeline is a receiver and a worker in this process, on a fresh
// database, both sending their spans to one in-memory recorder, or to
// none when tp is nil.
type tracedPipeline struct {
	db          *pgtest.DB
	receiverURL string
	logs        *logtest.Buffer
	handled     chan string
}

func startTracedPipeline(t *testing.T, tp trace.TracerProvider, extraEnv map[string]string, group bool) *tracedPipeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &tracedPipeline{db: pgtest.NewDB(t), logs: &logtest.Buffer{}, handled: make(chan string, 10)}
	logger := slog.New(slog.NewJSONHandler(p.logs, nil))
	addr := clustertest.FreeAddr(t)
	env := map[string]string{
		"DATABASE_URL":          p.db.URL,
		"RECEIVER_ADDR":         addr,
		"WORKER_ADDR":           clustertest.FreeAddr(t),
		"STRIPE_WEBHOOK_SECRET": traceStripeSecret,
		"BANK_WEBHOOK_SECRET":   "bank_trace_test_secret",
		"WORKER_PRUNE_INTERVAL": "0",
		"WORKER_CONCURRENCY":    "4",
		"DATABASE_MAX_CONNS":    "8",
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }

	rcfg, err := hookline.LoadReceiverConfig(getenv)
	require.NoError(t, err)
	rcfg.Logger, rcfg.TracerProvider = logger, tp
	wcfg, err := hookline.LoadWorkerConfig(getenv)
	require.NoError(t, err)
	wcfg.Logger, wcfg.TracerProvider = logger, tp

	mux := hookline.NewMux()
	mux.RegisterWith("stripe", "charge.succeeded", hookline.HandlerFunc(func(ctx context.Context, tx pgx.Tx, ev hookline.Event) error {
		p.handled <- ev.EventID
		return nil
	}), hookline.HandlerOpts{Group: group})

	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, hookline.RunReceiver(ctx, rcfg)) })
	wg.Go(func() { require.NoError(t, hookline.RunWorker(ctx, wcfg, mux)) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	p.receiverURL = "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.receiverURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "the receiver never became ready")
	return p
}

// send posts a signed Stripe event, with extra headers, and returns the
// answer's status.
func (p *tracedPipeline) send(t *testing.T, id string, header http.Header) int {
	t.Helper()
	body := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","type":"charge.succeeded","data":{"object":{"amount":100}}}`, id)
	req, err := http.NewRequest(http.MethodPost, p.receiverURL+"/api/webhooks/stripe", bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set(verify.StripeHeader, verify.SignStripe(traceStripeSecret, body, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func (p *tracedPipeline) waitHandled(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-p.handled:
		require.Equal(t, id, got)
	case <-time.After(20 * time.Second):
		t.Fatalf("event %s was never handled", id)
	}
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestOneSignedEventMakesOneConnectedTrace(t *testing.T) {
	t.Parallel()
	// A sender's trace context, which the receiver must not adopt.
	const hostileTrace = "0af7651916cd43dd8448eb211c80319c"
	for name, tc := range map[string]struct {
		ingestMode string
		group      bool
	}{
		"group commit on: batched ingest, grouped handler": {"batch", true},
		"group commit off: one transaction each":           {"single", false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			p := startTracedPipeline(t, tp, map[string]string{"INGEST_MODE": tc.ingestMode}, tc.group)

			require.Equal(t, http.StatusOK, p.send(t, "evt_traced", http.Header{"Traceparent": {"00-" + hostileTrace + "-b7ad6b7169203331-01"}}))
			p.waitHandled(t, "evt_traced")

			byName := map[string]sdktrace.ReadOnlySpan{}
			require.Eventually(t, func() bool {
				for _, s := range sr.Ended() {
					byName[s.Name()] = s
				}
				_, ok := byName["hookline.handle"]
				return ok && (!tc.group || byName["hookline.group"] != nil)
			}, 10*time.Second, 10*time.Millisecond, "the handler's span never ended")

			recv := byName["hookline.receive"]
			require.NotNil(t, recv)
			tid := recv.SpanContext().TraceID()
			require.NotEqual(t, hostileTrace, tid.String(), "the sender's traceparent was adopted")
			require.False(t, recv.Parent().IsValid(), "the request span starts the trace")
			require.Equal(t, trace.SpanKindServer, recv.SpanKind())
			ra := attrs(recv)
			require.Equal(t, "stripe", ra["hookline.source"].AsString())
			require.Equal(t, "evt_traced", ra["hookline.event_id"].AsString())
			require.Equal(t, "charge.succeeded", ra["hookline.event_type"].AsString())
			require.Equal(t, "accepted", ra["hookline.outcome"].AsString())
			require.Equal(t, int64(200), ra["http.response.status_code"].AsInt64())

			// receive → verify, envelope, commit (and the batch wait) →
			// River's work span → the handler.
			child := func(name string, parent sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
				t.Helper()
				s := byName[name]
				require.NotNil(t, s, "no %s span", name)
				require.Equal(t, tid, s.SpanContext().TraceID(), "%s is in another trace", name)
				require.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "%s's parent is not %s", name, parent.Name())
				return s
			}
			child("hookline.verify", recv)
			child("hookline.envelope", recv)
			commit := child("hookline.commit", recv)
			require.Equal(t, int64(1), attrs(commit)["hookline.batch.size"].AsInt64())
			if tc.ingestMode == "batch" {
				child("hookline.batch.wait", recv)
			} else {
				require.Nil(t, byName["hookline.batch.wait"])
			}
			work := child("river.work/process_event", commit)
			handle := child("hookline.handle", work)
			ha := attrs(handle)
			require.Equal(t, "stripe", ha["hookline.source"].AsString())
			require.Equal(t, "charge.succeeded", ha["hookline.event_type"].AsString())
			require.Equal(t, "evt_traced", ha["hookline.event_id"].AsString())
			require.Equal(t, int64(1), ha["hookline.attempt"].AsInt64())

			if tc.group {
				g := byName["hookline.group"]
				require.False(t, g.Parent().IsValid())
				require.Len(t, g.Links(), 1)
				require.Equal(t, handle.SpanContext(), g.Links()[0].SpanContext, "the group links its member")
				require.Len(t, handle.Links(), 1)
				require.Equal(t, g.SpanContext(), handle.Links()[0].SpanContext, "the member links its group")
			} else {
				require.Nil(t, byName["hookline.group"])
			}

			// The request's log line leads to the trace.
			require.Eventually(t, func() bool {
				return strings.Contains(p.logs.String(), `"trace_id":"`+tid.String()+`"`)
			}, 5*time.Second, 10*time.Millisecond, "no log line carries the trace id")
		})
	}
}

func TestWithoutOTELVariablesNothingIsTracedOrStored(t *testing.T) {
	t.Parallel()
	// No TracerProvider and no OTEL_* variable: tracing as in production
	// with them unset.
	p := startTracedPipeline(t, nil, nil, false)
	require.Equal(t, http.StatusOK, p.send(t, "evt_untraced", http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}))
	p.waitHandled(t, "evt_untraced")

	var metadata []byte
	require.NoError(t, p.db.Pool.QueryRow(context.Background(), `SELECT metadata FROM river_job WHERE kind = 'process_event'`).Scan(&metadata))
	var md map[string]any
	require.NoError(t, json.Unmarshal(metadata, &md))
	require.NotContains(t, md, "traceparent", "a trace context was stored with tracing off")
	require.NotContains(t, p.logs.String(), "trace_id")
	require.NotContains(t, p.logs.String(), "tracing on")
}
