// Package ledgertest keeps the provider's side of a webhook test: every event
// sent, every delivery attempt and the answer it got. When the run ends,
// Check holds the database to Hookline's promise against that record:
//
//   - every event that got a 2xx at least once is in the inbox exactly once,
//     and its effect is applied exactly once;
//   - an event that never got a 2xx is either not stored, or stored and
//     applied exactly once;
//   - a tampered or stale delivery is never stored and never acknowledged;
//   - no event job is left unfinished.
//
// Each valid event credits an account of its own ("bank:acc_<id>" or
// "stripe:cus_<id>") with its amount, so an effect applied twice, or applied
// for an event that was never stored, shows on that one account.
package ledgertest

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/verify"
)

// Canary is in every body the generator makes. No process may ever log it:
// tests forbid it in the output of every process they start.
const Canary = "ledger-body-canary-4f1d"

// Kind is what a delivery is meant to be.
type Kind int

// The kinds of event a Generator makes.
const (
	// Valid is signed correctly and must be stored and applied once.
	Valid Kind = iota
	// Tampered is signed, then changed: the signature no longer matches.
	Tampered
	// Stale is a Stripe event signed an hour ago, outside the tolerance.
	Stale
	// Replay is a valid delivery an attacker captured and sends again with
	// headers changed (a new event id, another type). The receiver may
	// answer it 2xx, as a duplicate, but must never store or apply it.
	Replay
)

func (k Kind) String() string {
	switch k {
	case Valid:
		return "valid"
	case Tampered:
		return "tampered"
	case Stale:
		return "stale"
	case Replay:
		return "replay"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// The signing schemes a Generator can send as, beside the two sources of
// every cluster ("stripe" and "bank", by their source name). Each sends a
// bank transfer to the source named "bank", so the example handlers apply
// it; a test declares that source with the scheme's type in a sources file.
const (
	// GitHub signs the body only; the id and type are the
	// X-GitHub-Delivery and X-GitHub-Event headers.
	GitHub = "github"
	// Shopify signs the body only; the id and type are the
	// X-Shopify-Webhook-Id and X-Shopify-Topic headers.
	Shopify = "shopify"
	// Svix is Standard Webhooks with Svix's header names: the signature
	// covers svix-id, svix-timestamp and the body.
	Svix = "svix"
)

// Event is one webhook, as the provider would send it on every attempt.
type Event struct {
	// Source is the receiver's source: "bank" (HMAC) or "stripe".
	Source string
	// ID is the provider's event id, the inbox key with Source.
	ID   string
	Kind Kind
	// Account is the account_balances row the event credits, and Cents
	// the amount.
	Account string
	Cents   int64
	// Body is the exact payload; for Tampered, after the change.
	Body []byte

	signed []byte // what the signature covers; differs from Body when Tampered
	// scheme is one of the constants above, or "" to sign as Source.
	scheme string
	// captured and set make a Replay: captured's request, with the
	// headers in set replaced.
	captured *Event
	set      http.Header
}

// Key is the event's inbox key, source/id.
func (e Event) Key() string { return e.Source + "/" + e.ID }

// Replay returns the delivery of e that an attacker who captured it would
// send: the same body and signature, with the headers in set replaced, and
// id as its event id in the ledger.
func (e Event) Replay(id string, set http.Header) Event {
	r := e
	r.ID, r.Kind, r.captured, r.set = id, Replay, &e, set
	return r
}

// Request builds a delivery of e to base (a receiver's URL), signed the way
// its provider signs: Stripe signs each attempt with the current time, so a
// retry is never stale because it is a retry.
func (e Event) Request(base string) (*http.Request, error) {
	if e.captured != nil {
		req, err := e.captured.Request(base)
		if err != nil {
			return nil, err
		}
		for k, v := range e.set {
			req.Header[http.CanonicalHeaderKey(k)] = v
		}
		return req, nil
	}
	req, err := http.NewRequest(http.MethodPost, base+"/api/webhooks/"+e.Source, bytes.NewReader(e.Body))
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", e.Key(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch cmp.Or(e.scheme, e.Source) {
	case "stripe":
		at := time.Now()
		if e.Kind == Stale {
			at = at.Add(-time.Hour)
		}
		req.Header.Set(verify.StripeHeader, verify.SignStripe(clustertest.StripeSecret, e.signed, at))
	case "bank":
		req.Header.Set(verify.HMACHeader, verify.SignHMAC(clustertest.BankSecret, e.signed))
	case GitHub:
		req.Header.Set("X-Hub-Signature-256", verify.SignGitHub(clustertest.BankSecret, e.signed))
		req.Header.Set("X-GitHub-Delivery", e.ID)
		req.Header.Set("X-GitHub-Event", "transfer.settled")
	case Shopify:
		req.Header.Set("X-Shopify-Hmac-Sha256", verify.SignShopify(clustertest.BankSecret, e.signed))
		req.Header.Set("X-Shopify-Webhook-Id", e.ID)
		req.Header.Set("X-Shopify-Topic", "transfer.settled")
	case Svix:
		now := time.Now()
		sig, err := verify.SignStandardWebhooks(clustertest.StandardWebhooksSecret, e.ID, now, e.signed)
		if err != nil {
			return nil, fmt.Errorf("sign %s: %w", e.Key(), err)
		}
		req.Header.Set(verify.SvixIDHeader, e.ID)
		req.Header.Set(verify.SvixTimestampHeader, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(verify.SvixSignatureHeader, sig)
	default:
		return nil, fmt.Errorf("event %s: no signer for source %q", e.Key(), e.Source)
	}
	return req, nil
}

// Generator makes events with ids unique to one run. It is safe for
// concurrent use.
type Generator struct {
	prefix string
	n      atomic.Int64
}

// NewGenerator returns a Generator whose ids start with prefix.
func NewGenerator(prefix string) *Generator { return &Generator{prefix: prefix} }

// Next makes a new event of kind k, alternating between the bank and Stripe
// sources. Stale events are always Stripe's: only it signs a timestamp here.
func (g *Generator) Next(k Kind) Event {
	n := g.n.Add(1)
	id := fmt.Sprintf("%s_%d", g.prefix, n)
	cents := 1 + n%9973
	var ev Event
	if n%2 == 0 && k != Stale {
		acc := "acc_" + id
		ev = Event{Source: "bank", ID: id, Kind: k, Account: "bank:" + acc, Cents: cents,
			Body: fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled","account":%q,"amount_cents":%d,"memo":%q}`, id, acc, cents, Canary)}
	} else {
		cus := "cus_" + id
		ev = Event{Source: "stripe", ID: id, Kind: k, Account: "stripe:" + cus, Cents: cents,
			Body: fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","type":"charge.succeeded","data":{"object":{"amount":%d,"customer":%q,"description":%q}}}`,
				id, cents, cus, Canary)}
	}
	return finish(ev, k, cents)
}

// NextAs makes a new bank transfer of kind k (Valid or Tampered) for the
// "bank" source, signed as scheme (GitHub, Shopify or Svix). Its id travels
// in a header, so the body holds none.
func (g *Generator) NextAs(scheme string, k Kind) Event {
	n := g.n.Add(1)
	id := fmt.Sprintf("%s_%d", g.prefix, n)
	cents := 1 + n%9973
	acc := "acc_" + id
	ev := Event{Source: "bank", ID: id, Kind: k, Account: "bank:" + acc, Cents: cents, scheme: scheme,
		Body: fmt.Appendf(nil, `{"type":"transfer.settled","account":%q,"amount_cents":%d,"memo":%q}`, acc, cents, Canary)}
	return finish(ev, k, cents)
}

// finish records what the signature covers and, for Tampered, changes
// the body after signing.
func finish(ev Event, k Kind, cents int64) Event {
	ev.signed = ev.Body
	if k == Tampered {
		// The attacker raises the amount after the provider signed it.
		ev.Body = bytes.Replace(ev.Body, fmt.Appendf(nil, "%d,", cents), fmt.Appendf(nil, "%d,", cents+1_000_000), 1)
	}
	return ev
}
