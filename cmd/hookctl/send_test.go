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
	env := map[string]string{"STRIPE_WEBHOOK_SECRET": sendStripeSecret, "BANK_WEBHOOK_SECRET": sendBankSecret}
	inner := b.getenv
	b.getenv = func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return inner(k)
	}
	srcs, _, err := sources.Load(b.getenv, "", 5*time.Minute)
	require.NoError(t, err)
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
