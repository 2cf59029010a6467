package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/sources"
)

const (
	sendStripeSecret = "whsec_send_test"
	sendBankSecret   = "bank_send_test"
)

// sendBundle is a test bundle with a real receiver on its database, which
// knows the stripe and bank sources by their secrets.
type sendBundle struct {
	*testBundle
	url string
}

func setupSend(t *testing.T) *sendBundle {
	t.Helper()
	b := setup(t)
	b.getenv = b.withEnv(map[string]string{"STRIPE_WEBHOOK_SECRET": sendStripeSecret, "BANK_WEBHOOK_SECRET": sendBankSecret})
	srcs, _, err := sources.Load(b.getenv, "", 5*time.Minute)
	require.NoError(t, err)
	return serveSend(t, b, srcs)
}

// serveSend starts a real receiver of srcs on b's database, stopped when
// the test ends.
func serveSend(t *testing.T, b *testBundle, srcs []receiver.Source) *sendBundle {
	t.Helper()
	h := receiver.New(slog.New(slog.DiscardHandler), srcs, ingest.NewSingle(b.db.Pool, b.river), b.db.Pool, receiver.Options{
		MaxBodyBytes: 1 << 20, IngestTimeout: 5 * time.Second, RetryAfter: time.Second,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &sendBundle{testBundle: b, url: srv.URL}
}

// send runs hookctl send with stdin, and returns its output.
func (b *sendBundle) send(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newSendCmd(b.getenv)
	cmd.SetArgs(append(args, "--url", b.url))
	cmd.SetIn(strings.NewReader(stdin))
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// storedEvent is an inbox row as the receiver stored it.
type storedEvent struct {
	Source, EventID, Type string
	Payload               []byte
}

func (b *sendBundle) stored(t *testing.T) []storedEvent {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT source, event_id, event_type, payload FROM inbox_events ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var evs []storedEvent
	for rows.Next() {
		var e storedEvent
		require.NoError(t, rows.Scan(&e.Source, &e.EventID, &e.Type, &e.Payload))
		evs = append(evs, e)
	}
	require.NoError(t, rows.Err())
	return evs
}

func TestSendTemplatesAreAcceptedAndAppliedByTheExampleHandlers(t *testing.T) {
	t.Parallel()
	b := setupSend(t)
	mux := hooklinetype.NewMux()
	balances.Register(mux)
	b.startWorker(t, mux)

	for _, args := range [][]string{
		{"stripe", "--type", "charge.succeeded", "--customer", "cus_t", "--amount", "2000"},
		{"stripe", "--type", "invoice.paid", "--customer", "cus_t", "--amount", "4900", "--invoice", "in_t"},
		{"bank", "--type", "transfer.settled", "--account", "acc_t", "--amount-cents", "1250"},
		{"bank", "--type", "transfer.reversed", "--account", "acc_t", "--amount-cents", "250"},
	} {
		out, err := b.send(t, "", args...)
		require.NoError(t, err, "%v", args)
		require.Contains(t, out, "-> 200", "%v", args)
	}

	evs := b.stored(t)
	require.Len(t, evs, 4)
	var types []string
	for _, e := range evs {
		types = append(types, e.Source+" "+e.Type)
	}
	require.Equal(t, []string{"stripe charge.succeeded", "stripe invoice.paid", "bank transfer.settled", "bank transfer.reversed"}, types)

	balance := func(account string) int64 {
		cents, err := balances.Get(context.Background(), b.db.Pool, account)
		require.NoError(t, err)
		return cents
	}
	require.Eventually(t, func() bool { return balance("stripe:cus_t") == 2000 && balance("bank:acc_t") == 1000 },
		10*time.Second, 20*time.Millisecond, "the balances handlers applied the charge and both transfers")

	// examples/invoices is a module of its own; read the invoice as its
	// handler does, with stripe-go.
	var ev stripe.Event
	require.NoError(t, json.Unmarshal(evs[1].Payload, &ev))
	var inv stripe.Invoice
	require.NoError(t, json.Unmarshal(ev.Data.Raw, &inv))
	require.Equal(t, "in_t", inv.ID)
	require.NotNil(t, inv.Customer)
	require.Equal(t, "cus_t", inv.Customer.ID)
	require.Equal(t, int64(4900), inv.AmountPaid)
	require.Equal(t, stripe.Currency("usd"), inv.Currency)
	require.NotNil(t, inv.StatusTransitions)
	require.InDelta(t, time.Now().Unix(), inv.StatusTransitions.PaidAt, 60)
}

func TestSendGivesEachTemplateEventANewID(t *testing.T) {
	t.Parallel()
	b := setupSend(t)
	for range 2 {
		_, err := b.send(t, "", "stripe", "--type", "invoice.paid")
		require.NoError(t, err)
	}
	_, err := b.send(t, "", "stripe", "--type", "invoice.paid", "--id", "evt_fixed")
	require.NoError(t, err)
	evs := b.stored(t)
	require.Len(t, evs, 3, "two new events and a third with its own id")
	require.NotEqual(t, evs[0].EventID, evs[1].EventID)
	require.True(t, strings.HasPrefix(evs[0].EventID, "evt_"), evs[0].EventID)
	require.Equal(t, "evt_fixed", evs[2].EventID)
	var invoices []string
	for _, e := range evs {
		var ev stripe.Event
		require.NoError(t, json.Unmarshal(e.Payload, &ev))
		var inv stripe.Invoice
		require.NoError(t, json.Unmarshal(ev.Data.Raw, &inv))
		invoices = append(invoices, inv.ID)
	}
	require.NotEqual(t, invoices[0], invoices[1], "a new invoice too, or its handler would record only the first")
}

func TestSendDataFromAFileOrStandardInputIsSignedAndSentByteForByte(t *testing.T) {
	t.Parallel()
	b := setupSend(t)
	// Spacing, key order and an escape that a re-encoding would change.
	stripeBody := "{ \"type\": \"invoice.paid\",  \"id\": \"evt_file\", \"object\": \"event\",\n  \"data\": {\"object\": {\"id\": \"in_file\", \"customer\": \"cus_\\u00e9\"}} }\n"
	file := filepath.Join(t.TempDir(), "event.json")
	require.NoError(t, os.WriteFile(file, []byte(stripeBody), 0o600))
	out, err := b.send(t, "", "stripe", "--data", "@"+file)
	require.NoError(t, err)
	require.Equal(t, "stripe invoice.paid evt_file -> 200 {\"received\":true}\n", out)

	bankBody := `{"id":"tr_stdin", "type":"transfer.settled","account":"acc_s","amount_cents":5}`
	out, err = b.send(t, bankBody, "bank", "--data", "-")
	require.NoError(t, err)
	require.Contains(t, out, "bank transfer.settled tr_stdin -> 200")

	evs := b.stored(t)
	require.Len(t, evs, 2)
	require.Equal(t, storedEvent{"stripe", "evt_file", "invoice.paid", []byte(stripeBody)}, evs[0])
	require.Equal(t, storedEvent{"bank", "tr_stdin", "transfer.settled", []byte(bankBody)}, evs[1])
}

func TestSendTamperedBodyIsRefused(t *testing.T) {
	t.Parallel()
	b := setupSend(t)
	out, err := b.send(t, "", "bank", "--type", "transfer.settled", "--tamper")
	require.NoError(t, err)
	require.Contains(t, out, "-> 400")
	out, err = b.send(t, `{"id":"evt_t","type":"charge.succeeded"}`, "stripe", "--data", "-", "--tamper")
	require.NoError(t, err)
	require.Contains(t, out, "-> 400")
	require.Empty(t, b.stored(t))
}

func TestSendRefusesWhatItCannotSend(t *testing.T) {
	t.Parallel()
	b := setupSend(t)
	empty := filepath.Join(t.TempDir(), "empty.json")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"UnknownType", "", []string{"stripe", "--type", "charge.refunded"}, `no stripe template for event type "charge.refunded": the templates are charge.succeeded, invoice.paid; give any other body with --data @FILE`},
		{"TypeOfAnotherSource", "", []string{"bank", "--type", "invoice.paid"}, "the templates are transfer.settled, transfer.reversed"},
		{"NeitherTypeNorData", "", []string{"stripe"}, "type data"},
		{"DataAndTemplateFlags", "{}", []string{"stripe", "--data", "-", "--customer", "cus_1"}, "[customer data] were all set"},
		{"DataInline", "", []string{"stripe", "--data", `{"id":"evt_1"}`}, "--data takes @FILE, or - for standard input"},
		{"DataEmpty", "", []string{"stripe", "--data", "@" + empty}, empty + " is empty"},
		{"DataEmptyStdin", "", []string{"stripe", "--data", "-"}, "standard input is empty"},
		{"DataMissingFile", "", []string{"stripe", "--data", "@/nonexistent/event.json"}, "/nonexistent/event.json"},
		{"UnknownSource", "", []string{"github", "--type", "push"}, `unknown source "github"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.send(t, tt.stdin, tt.args...)
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.Empty(t, b.stored(t))
}

const sendSourcesFile = `
sources:
  - {name: stripe, type: stripe, secrets: [{label: current, env: CUR}]}
  - {name: github, type: github, secrets: [{label: current, env: CUR}, {label: previous, env: PREV}]}
  - {name: shopify, type: shopify, failure_status: 401, secrets: [{label: current, env: CUR}]}
  - {name: slack, type: slack, secrets: [{label: current, env: CUR}]}
  - {name: svix, type: standardwebhooks, secrets: [{label: current, env: SVIX_CUR}]}
  - name: bank
    type: hmac
    hmac: {header: X-Signature, prefix: "t=", algorithm: sha512, encoding: base64, timestamp_header: X-Timestamp, template: "{timestamp}.{body}"}
    secrets: [{label: current, env: CUR}]
  - {name: orders, type: hmac, id: {header: X-Order-Event}, secrets: [{label: current, env: CUR}]}
  - {name: unset, type: github, secrets: [{label: current, env: NOT_SET_ANYWHERE}]}
`

// setupSendWithFile is setupSend with the sources of sendSourcesFile, one
// of each scheme, in HOOKLINE_SOURCES.
func setupSendWithFile(t *testing.T) *sendBundle {
	t.Helper()
	b := setup(t)
	file := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(file, []byte(sendSourcesFile), 0o600))
	b.getenv = b.withEnv(map[string]string{"HOOKLINE_SOURCES": file, "CUR": "current-secret", "PREV": "previous-secret",
		"SVIX_CUR": "whsec_Y3VycmVudC1zZWNyZXQ="})
	// The receiver must start without the source whose secret is unset.
	f, err := sources.ReadFile(file)
	require.NoError(t, err)
	srcs, _, err := sources.Build(b.getenv, f.Sources[:len(f.Sources)-1])
	require.NoError(t, err)
	return serveSend(t, b, srcs)
}

func TestSendSignsForEachSchemeOfTheSourcesFile(t *testing.T) {
	t.Parallel()
	b := setupSendWithFile(t)
	tests := []struct {
		source, body   string
		args           []string
		wantID, wantTy string
	}{
		{"github", `{"ref":"refs/heads/main"}`, []string{"--type", "push", "--id", "72d3162e-cc78-11e3-81ab-4c9367dc0958"}, "72d3162e-cc78-11e3-81ab-4c9367dc0958", "push"},
		{"shopify", `{"id":820982911946154508}`, []string{"--type", "orders/create", "--id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "orders/create"},
		{"slack", `{"type":"event_callback","event_id":"Ev0PV52K21","event":{"type":"app_mention"}}`, nil, "Ev0PV52K21", "app_mention"},
		{"svix", `{"type":"invoice.created","data":{"id":"in_1"}}`, []string{"--id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"}, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "invoice.created"},
		{"bank", `{"id":"tr_file","type":"transfer.settled","account":"acc_1","amount_cents":5}`, nil, "tr_file", "transfer.settled"},
		{"orders", `{"type":"order.paid"}`, []string{"--id", "ord_evt_1"}, "ord_evt_1", "order.paid"},
	}
	for _, tt := range tests {
		out, err := b.send(t, tt.body, append([]string{tt.source, "--data", "-"}, tt.args...)...)
		require.NoError(t, err, tt.source)
		require.Equal(t, tt.source+" "+tt.wantTy+" "+tt.wantID+" -> 200 {\"received\":true}\n", out, tt.source)
	}
	out, err := b.send(t, "", "stripe", "--type", "charge.succeeded")
	require.NoError(t, err)
	require.Contains(t, out, "-> 200", "a template, signed with the file's stripe secret")

	got := map[string]storedEvent{}
	for _, e := range b.stored(t) {
		got[e.Source] = e
	}
	for _, tt := range tests {
		require.Equal(t, storedEvent{tt.source, tt.wantID, tt.wantTy, []byte(tt.body)}, got[tt.source], tt.source)
	}

	// A header id is new each time unless given.
	_, err = b.send(t, `{"ref":"refs/heads/dev"}`, "github", "--data", "-", "--type", "push")
	require.NoError(t, err)
	_, err = b.send(t, `{"ref":"refs/heads/dev2"}`, "github", "--data", "-", "--type", "push")
	require.NoError(t, err)
	var githubIDs int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT count(DISTINCT event_id) FROM inbox_events WHERE source = 'github'`).Scan(&githubIDs))
	require.Equal(t, 3, githubIDs)
}

func TestSendWithTheWrongSecretIsRefusedForEachScheme(t *testing.T) {
	t.Parallel()
	b := setupSendWithFile(t)
	for source, args := range map[string][]string{
		"github":  {"--type", "push"},
		"shopify": {"--type", "orders/create"},
		"slack":   nil,
		"svix":    nil,
		"bank":    nil,
		"stripe":  nil,
	} {
		secret := "wrong-secret"
		if source == "svix" {
			secret = "whsec_d3Jvbmctc2VjcmV0"
		}
		body := `{"id":"x_1","type":"t","event_id":"Ev1","event":{"type":"t"}}`
		out, err := b.send(t, body, append([]string{source, "--data", "-", "--secret", secret}, args...)...)
		require.NoError(t, err, source)
		want := "-> 400"
		if source == "shopify" {
			want = "-> 401" // its failure_status
		}
		require.Contains(t, out, want, source)
	}
	require.Empty(t, b.stored(t))
}

func TestSendRefusesWhatTheSourcesFileCannotSend(t *testing.T) {
	t.Parallel()
	b := setupSendWithFile(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"UnknownSource", []string{"gitlab", "--data", "-"}, `unknown source "gitlab"`},
		{"SecretNotSet", []string{"unset", "--data", "-", "--type", "push"}, "environment variable NOT_SET_ANYWHERE is not set"},
		{"TypeInAHeaderNotGiven", []string{"github", "--data", "-"}, "source github reads the event type from header X-GitHub-Event: give one"},
		{"IDInTheBody", []string{"slack", "--data", "-", "--id", "Ev2"}, "--id: source slack reads the event id from the body"},
		{"TypeInTheBody", []string{"bank", "--data", "-", "--type", "transfer.settled"}, "--type: source bank reads the event type from the body"},
		{"NoTemplate", []string{"github", "--type", "push"}, "no templates for source github"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.send(t, `{"id":"x"}`, tt.args...)
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.Empty(t, b.stored(t))
}
