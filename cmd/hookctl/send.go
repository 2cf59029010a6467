package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/internal/sources"
)

// maxSendBytes bounds a --data body: the receiver's largest allowed
// MAX_BODY_BYTES, so that anything larger is surely a wrong file.
const maxSendBytes = 32 << 20

type sendOpts struct {
	url, id, eventType, secret, apiVersion string
	customer, account, invoice             string
	amount, amountCents                    int64
	data                                   string
	tamper                                 bool
}

// sendTemplate is a sample body of one event type that the example
// handlers (examples/balances, examples/invoices) apply.
type sendTemplate struct {
	source, eventType, effect string
	// body returns the event with id, as the provider would send it.
	body func(o sendOpts, id string, now time.Time) any
}

// sendTemplates lists the event types hookctl send can make up a body for.
func sendTemplates() []sendTemplate {
	stripeEvent := func(o sendOpts, id, eventType string, now time.Time, object map[string]any) any {
		return map[string]any{
			"id": id, "object": "event", "api_version": o.apiVersion, "type": eventType,
			"created": now.Unix(), "livemode": false,
			"data": map[string]any{"object": object},
		}
	}
	transfer := func(eventType string) func(o sendOpts, id string, now time.Time) any {
		return func(o sendOpts, id string, _ time.Time) any {
			return map[string]any{"id": id, "type": eventType, "account": o.account, "amount_cents": o.amountCents}
		}
	}
	return []sendTemplate{
		{"stripe", "charge.succeeded", "credits stripe:<customer> with --amount (examples/balances)",
			func(o sendOpts, id string, now time.Time) any {
				return stripeEvent(o, id, "charge.succeeded", now, map[string]any{
					"id": randomID("ch_"), "object": "charge", "amount": o.amount, "currency": "usd",
					"customer": o.customer, "paid": true, "status": "succeeded",
				})
			}},
		{"stripe", "invoice.paid", "records --invoice as paid by --customer, --amount (examples/invoices)",
			func(o sendOpts, id string, now time.Time) any {
				invoice := o.invoice
				if invoice == "" {
					invoice = randomID("in_")
				}
				return stripeEvent(o, id, "invoice.paid", now, map[string]any{
					"id": invoice, "object": "invoice", "customer": o.customer, "amount_paid": o.amount,
					"currency": "usd", "paid": true, "status": "paid",
					"status_transitions": map[string]any{"paid_at": now.Unix()},
				})
			}},
		{"bank", "transfer.settled", "credits bank:<account> with --amount-cents (examples/balances)", transfer("transfer.settled")},
		{"bank", "transfer.reversed", "debits bank:<account> by --amount-cents (examples/balances)", transfer("transfer.reversed")},
	}
}

// templatesHelp lists the templates for the command's help.
func templatesHelp() string {
	var b strings.Builder
	for _, t := range sendTemplates() {
		fmt.Fprintf(&b, "  %-7s %-18s %s\n", t.source, t.eventType, t.effect)
	}
	return b.String()
}

func newSendCmd(getenv func(string) string) *cobra.Command {
	var o sendOpts
	cmd := &cobra.Command{
		Use:   "send <source> (--type T | --data @FILE | --data -)",
		Short: "Sign an event as its provider would, and post it",
		Long: `Sign an event the way the source's provider would, post it to a running
receiver, and print the answer. Like "stripe trigger", it is for demos and
local development.

The body is either made up from a template, chosen with --type, with a new
event id each time (or --id, to send an event again: a redelivery), or
given whole with --data @FILE or --data - (standard input) and sent byte for
byte as read. Templates, one for each event type the example handlers apply:

` + templatesHelp() + `
The source is one of HOOKLINE_SOURCES's, signed by its type with its first
secret, or, without a sources file, stripe or bank, signed with the first
entry of STRIPE_WEBHOOK_SECRET or BANK_WEBHOOK_SECRET; --secret replaces
the secret. A source that reads the event id or type from a header (GitHub,
Shopify, Standard Webhooks' webhook-id) gets --id (default: a new one) and
--type there; for the others they are in the body. --tamper changes the
body after signing it, which the receiver must refuse.`,
		Example: `  hookctl send stripe --type charge.succeeded --customer cus_1 --amount 2000
  hookctl send stripe --type invoice.paid --customer cus_1 --amount 4900
  hookctl send bank --type transfer.settled --account acc_9 --amount-cents 1250
  hookctl send stripe --data @testdata/invoice_paid.json
  jq -c '.id = "evt_\(now)"' event.json | hookctl send stripe --data -
  HOOKLINE_SOURCES=sources.yaml hookctl send github --data @push.json --type push`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return send(cmd, getenv, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "http://localhost:8080", "receiver base URL")
	f.StringVar(&o.eventType, "type", "", "event type: of the template, or, with --data, for a source that reads it from a header")
	f.StringVar(&o.data, "data", "", "the body: @FILE, or - for standard input, sent as is (instead of a template)")
	f.StringVar(&o.id, "id", "", "event id (default: a new one); with --data, only for a source that reads it from a header")
	f.StringVar(&o.secret, "secret", "", "signing secret (default: the source's first)")
	f.StringVar(&o.apiVersion, "api-version", "2023-10-16", "template: Stripe api_version to put in the event")
	f.StringVar(&o.customer, "customer", "cus_demo", "template: Stripe customer id")
	f.Int64Var(&o.amount, "amount", 1000, "template: Stripe charge amount or invoice amount paid, in cents")
	f.StringVar(&o.invoice, "invoice", "", "template: Stripe invoice id (default: a new one)")
	f.StringVar(&o.account, "account", "acc_demo", "template: bank account")
	f.Int64Var(&o.amountCents, "amount-cents", 1000, "template: bank transfer amount, in cents")
	f.BoolVar(&o.tamper, "tamper", false, "alter the body after signing (expect 400)")
	cmd.MarkFlagsOneRequired("type", "data")
	for _, name := range []string{"api-version", "customer", "amount", "invoice", "account", "amount-cents"} {
		cmd.MarkFlagsMutuallyExclusive("data", name)
	}
	return cmd
}

func send(cmd *cobra.Command, getenv func(string) string, source string, o sendOpts) error {
	sender, err := sources.LoadSender(getenv, getenv("HOOKLINE_SOURCES"), source, o.secret)
	if err != nil {
		return err
	}
	now := time.Now()
	var body []byte
	eventID, eventType := o.id, o.eventType
	if o.data != "" {
		// The id and type go in headers where the source reads them there;
		// otherwise they are the body's, and read from it only to print.
		if sender.IDHeader() == "" {
			if o.id != "" {
				return fmt.Errorf("--id: source %s reads the event id from the body (%s): change it there", source, sender.ID)
			}
		} else if eventID == "" {
			eventID = randomID("evt_")
		}
		if sender.EventType.Header == "" && o.eventType != "" {
			return fmt.Errorf("--type: source %s reads the event type from the body (%s): change it there", source, sender.EventType)
		}
		if body, err = readData(cmd, o.data); err != nil {
			return err
		}
		if sender.ID.JSON != "" {
			eventID = gjson.GetBytes(body, sender.ID.JSON).String()
		}
		if sender.EventType.JSON != "" {
			eventType = gjson.GetBytes(body, sender.EventType.JSON).String()
		}
	} else if body, eventID, err = fromTemplate(source, o, now); err != nil {
		return err
	}

	header, err := sender.Sign(body, eventID, eventType, now)
	if err != nil {
		return err
	}
	if o.tamper {
		// A byte the signature does not cover; the JSON means the same.
		body = append(slices.Clip(body), ' ')
	}

	url := strings.TrimRight(o.url, "/") + "/api/webhooks/" + source
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request to %s: %w", url, err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s -> %d %s\n", source, oneLine(eventType, 60), oneLine(eventID, 80), resp.StatusCode, bytes.TrimSpace(answer))
	return nil
}

// fromTemplate makes up the body of an event of type o.eventType from
// source, with a new id unless o.id is set, and returns it with that id.
func fromTemplate(source string, o sendOpts, now time.Time) ([]byte, string, error) {
	var known []string
	for _, t := range sendTemplates() {
		if t.source != source {
			continue
		}
		if t.eventType != o.eventType {
			known = append(known, t.eventType)
			continue
		}
		id := o.id
		if id == "" {
			id = randomID(map[string]string{"stripe": "evt_", "bank": "tr_"}[source])
		}
		body, err := json.Marshal(t.body(o, id, now))
		if err != nil {
			return nil, "", fmt.Errorf("encode %s %s template: %w", source, o.eventType, err)
		}
		return body, id, nil
	}
	if len(known) == 0 {
		return nil, "", fmt.Errorf("no templates for source %s (only for stripe and bank, whose events the examples apply): give the body with --data @FILE", source)
	}
	return nil, "", fmt.Errorf("no %s template for event type %q: the templates are %s; give any other body with --data @FILE",
		source, o.eventType, strings.Join(known, ", "))
}

// readData reads a --data value: @FILE, or - for standard input.
func readData(cmd *cobra.Command, data string) ([]byte, error) {
	var (
		r    io.Reader
		name string
	)
	switch {
	case data == "-":
		r, name = cmd.InOrStdin(), "standard input"
	case strings.HasPrefix(data, "@") && len(data) > 1:
		f, err := os.Open(data[1:])
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		defer f.Close()
		r, name = f, data[1:]
	default:
		return nil, errors.New("--data takes @FILE, or - for standard input, not the body itself")
	}
	body, err := io.ReadAll(io.LimitReader(r, maxSendBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("--data: read %s: %w", name, err)
	case len(body) == 0:
		return nil, fmt.Errorf("--data: %s is empty", name)
	case len(body) > maxSendBytes:
		return nil, fmt.Errorf("--data: %s is larger than %d MiB, more than any receiver accepts", name, maxSendBytes>>20)
	}
	return body, nil
}

func randomID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
