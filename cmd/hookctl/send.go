package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/verify"
)

type sendOpts struct {
	url, id, eventType, secret, apiVersion string
	customer, account                      string
	amount, amountCents                    int64
	tamper                                 bool
}

func newSendCmd(getenv func(string) string) *cobra.Command {
	var o sendOpts
	cmd := &cobra.Command{
		Use:   "send stripe|bank",
		Short: "Sign a sample event as the provider would, and post it",
		Long: `Sign a sample event the way Stripe or the bank would, post it to a running
receiver, and print the answer. Like "stripe trigger", it is for demos and
local development.

The secret is --secret, or else the first entry of STRIPE_WEBHOOK_SECRET or
BANK_WEBHOOK_SECRET. Pass --id to send an event again (a replay) and --tamper
to change the body after signing it.`,
		Example: `  hookctl send stripe --type charge.succeeded --customer cus_1 --amount 2000
  hookctl send bank --type transfer.settled --account acc_9 --amount-cents 1250`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"stripe", "bank"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return send(cmd, getenv, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "http://localhost:8080", "receiver base URL")
	f.StringVar(&o.id, "id", "", "event id (default: random)")
	f.StringVar(&o.eventType, "type", "", "event type, e.g. charge.succeeded or transfer.settled")
	f.StringVar(&o.secret, "secret", "", "signing secret (default: from the environment)")
	f.StringVar(&o.apiVersion, "api-version", "2023-10-16", "Stripe api_version to put in the event")
	f.StringVar(&o.customer, "customer", "cus_demo", "Stripe customer id")
	f.Int64Var(&o.amount, "amount", 1000, "Stripe charge amount, in cents")
	f.StringVar(&o.account, "account", "acc_demo", "bank account")
	f.Int64Var(&o.amountCents, "amount-cents", 1000, "bank transfer amount, in cents")
	f.BoolVar(&o.tamper, "tamper", false, "alter the body after signing (expect 400)")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

func send(cmd *cobra.Command, getenv func(string) string, source string, o sendOpts) error {
	if o.id == "" {
		o.id = randomID(map[string]string{"stripe": "evt_", "bank": "tr_"}[source])
	}
	var body []byte
	header := http.Header{"Content-Type": {"application/json"}}
	secret, err := pickSecret(o.secret, source, getenv)
	if err != nil {
		return err
	}
	switch source {
	case "stripe":
		body, _ = json.Marshal(map[string]any{
			"id": o.id, "object": "event", "api_version": o.apiVersion, "type": o.eventType,
			"created": time.Now().Unix(), "livemode": false,
			"data": map[string]any{"object": map[string]any{
				"object": "charge", "amount": o.amount, "currency": "usd", "customer": o.customer,
			}},
		})
		header.Set(verify.StripeHeader, verify.SignStripe(secret, body, time.Now()))
	case "bank":
		body, _ = json.Marshal(map[string]any{
			"id": o.id, "type": o.eventType, "account": o.account, "amount_cents": o.amountCents,
		})
		header.Set(verify.HMACHeader, verify.SignHMAC(secret, body))
	default:
		return fmt.Errorf("unknown source %q: want stripe or bank", source)
	}
	if o.tamper {
		body = bytes.Replace(body, []byte(`"id"`), []byte(`"id" `), 1)
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
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s -> %d %s\n", source, o.eventType, o.id, resp.StatusCode, bytes.TrimSpace(answer))
	return nil
}

func pickSecret(flagValue, source string, getenv func(string) string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	name := strings.ToUpper(source) + "_WEBHOOK_SECRET"
	secrets, err := config.Secrets(getenv, name)
	if err != nil {
		return "", err
	}
	if len(secrets) > 0 {
		return secrets[0], nil
	}
	return "", fmt.Errorf("no secret: pass --secret or set %s", name)
}

func randomID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
