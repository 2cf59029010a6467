package sources_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/sources"
	"github.com/hookline/hookline/internal/verify"
)

// TestReplayGuardDefaultsFollowWhatTheSchemeSigns checks, per provider,
// which guard a source gets and which warnings `hookctl sources` and the
// receiver print: a header the scheme does not sign is attacker-controlled.
func TestReplayGuardDefaultsFollowWhatTheSchemeSigns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		source   string
		guard    receiver.ReplayGuard
		warnings []string
	}{
		{"stripe signs its id in the body", `{name: s, type: stripe, secrets: [{label: a, env: GH_SECRET}]}`, receiver.GuardOff, nil},
		{"standard webhooks signs its id header", `{name: s, type: standardwebhooks, secrets: [{label: a, env: SVIX_SECRET}]}`, receiver.GuardOff, nil},
		{"slack signs its id in the body", `{name: s, type: slack, secrets: [{label: a, env: GH_SECRET}]}`, receiver.GuardOff, nil},
		{"github signs neither its delivery id nor its event header", `{name: s, type: github, secrets: [{label: a, env: GH_SECRET}]}`, receiver.GuardBody, []string{
			`source "s" takes its event id from header X-GitHub-Delivery, which the github scheme does not sign: a captured delivery could be sent again under a new id; replay_guard body refuses it`,
			`source "s" takes its event type from header X-GitHub-Event, which the github scheme does not sign: a captured delivery could be sent under another type; handlers that route on the type must check that the body agrees`,
		}},
		{"shopify sends one body under several topics", `{name: s, type: shopify, secrets: [{label: a, env: GH_SECRET}]}`, receiver.GuardBodyAndType, []string{
			`source "s" takes its event id from header X-Shopify-Webhook-Id, which the shopify scheme does not sign: a captured delivery could be sent again under a new id; replay_guard body_and_type refuses it`,
			`source "s" takes its event time from header X-Shopify-Triggered-At, which the shopify scheme does not sign: ordered handlers would trust it to tell a stale event from a new one`,
			`source "s" takes its event type from header X-Shopify-Topic, which the shopify scheme does not sign: a captured delivery could be sent under another type; handlers that route on the type must check that the body agrees; with replay_guard body_and_type it is stored once per type, so set event_types to the types you subscribe to`,
		}},
		{"shopify with its topics listed", `{name: s, type: shopify, event_types: [products/create, products/update], secrets: [{label: a, env: GH_SECRET}]}`, receiver.GuardBodyAndType, []string{
			`source "s" takes its event id from header X-Shopify-Webhook-Id, which the shopify scheme does not sign: a captured delivery could be sent again under a new id; replay_guard body_and_type refuses it`,
			`source "s" takes its event time from header X-Shopify-Triggered-At, which the shopify scheme does not sign: ordered handlers would trust it to tell a stale event from a new one`,
			`source "s" takes its event type from header X-Shopify-Topic, which the shopify scheme does not sign: a captured delivery could be sent under another type; handlers that route on the type must check that the body agrees`,
		}},
		{"shopify, opted into the stricter guard", `{name: s, type: shopify, replay_guard: body, secrets: [{label: a, env: GH_SECRET}]}`, receiver.GuardBody, []string{
			`source "s" takes its event id from header X-Shopify-Webhook-Id, which the shopify scheme does not sign: a captured delivery could be sent again under a new id; replay_guard body refuses it`,
			`source "s" takes its event time from header X-Shopify-Triggered-At, which the shopify scheme does not sign: ordered handlers would trust it to tell a stale event from a new one`,
			`source "s" takes its event type from header X-Shopify-Topic, which the shopify scheme does not sign: a captured delivery could be sent under another type; handlers that route on the type must check that the body agrees`,
		}},
		{"an hmac id in a header gets the body guard", `{name: s, type: hmac, id: {header: X-Request-Id}, secrets: [{label: a, env: GH_SECRET}]}`, receiver.GuardBody, []string{
			`source "s" takes its event id from header X-Request-Id, which the hmac scheme does not sign: a captured delivery could be sent again under a new id; replay_guard body refuses it`,
		}},
		{"turning the guard off is warned about", `{name: s, type: github, replay_guard: "off", event_type: {json: action}, secrets: [{label: a, env: GH_SECRET}]}`, receiver.GuardOff, []string{
			`source "s" takes its event id from header X-GitHub-Delivery, which the github scheme does not sign: a captured delivery could be sent again under a new id, and with replay_guard off it would be stored and applied again`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srcs, sums, err := sources.Load(getenv(secretEnv), writeFile(t, "sources: ["+tt.source+"]"), time.Minute)
			require.NoError(t, err)
			require.Equal(t, tt.guard, srcs[0].ReplayGuard)
			require.Equal(t, tt.guard.String(), sums[0].ReplayGuard)
			require.Equal(t, tt.warnings, sums[0].Warnings)
		})
	}

	_, _, err := sources.Load(getenv(secretEnv), writeFile(t, `sources: [{name: s, type: github, replay_guard: always, secrets: [{label: a, env: GH_SECRET}]}]`), time.Minute)
	require.ErrorContains(t, err, `sources.s.replay_guard: "always"; want body, body_and_type or off`)
}

// TestStandardWebhooksKeysOnTheIDItsSignatureCovers sends a genuine svix-*
// delivery with a webhook-id header added: the event id must be the
// signed svix-id, not the added header.
func TestStandardWebhooksKeysOnTheIDItsSignatureCovers(t *testing.T) {
	t.Parallel()
	srcs, sums, err := sources.Load(getenv(secretEnv), writeFile(t, `sources: [{name: s, type: standardwebhooks, secrets: [{label: a, env: SVIX_SECRET}]}]`), time.Minute)
	require.NoError(t, err)
	require.Equal(t, "header webhook-id or svix-id, whichever set is signed", sums[0].ID)
	body := []byte(`{"type":"invoice.paid","data":{}}`)
	now := time.Now()
	sig, err := verify.SignStandardWebhooks(secretEnv["SVIX_SECRET"], "msg_signed", now, body)
	require.NoError(t, err)
	h := http.Header{}
	h.Set("svix-id", "msg_signed")
	h.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("svix-signature", sig)
	h.Set("webhook-id", "msg_forged")
	require.NoError(t, srcs[0].Verifier.Verify(h, body))
	env, err := srcs[0].Envelope.Extract(h, body)
	require.NoError(t, err)
	require.Equal(t, "msg_signed", env.ID)
}

// TestSecretsInTheWrongFieldAreNeverEchoed puts a secret where a variable
// name, a path or a label belongs. The error must say what is wrong
// without repeating the value, which is printed by the receiver and by
// hookctl sources.
func TestSecretsInTheWrongFieldAreNeverEchoed(t *testing.T) {
	t.Parallel()
	const secret = "whsec_Pasted9Into8The7Wrong6Field"
	tests := []struct {
		name, ref, want string
	}{
		{"a secret as env", `{label: current, env: ` + secret + `}`, "sources.s.secrets[0]: env must name an environment variable"},
		{"a secret with symbols as env", `{label: current, env: "a+b/c="}`, "sources.s.secrets[0]: env must name an environment variable"},
		{"a secret as file", `{label: current, file: ` + secret + `}`, "sources.s.secrets[0]: file must be an absolute path"},
		{"a lower-case secret as env", `{label: current, env: my_webhook_secret_2024}`, "its name is not shown"},
		{"a secret as label", `{label: ` + secret + `, env: GH_SECRET}`, "sources.s.secrets[0].label: must be a short name"},
		{"a hex secret as label", `{label: 8f3a9c2b7d1e4f60a5b8c9d0e1f2a3b4, env: GH_SECRET}`, "sources.s.secrets[0].label: must be a short name"},
		{"a base64 secret as label", `{label: "dGhpcyBpcyBhIHNlY3JldA==", env: GH_SECRET}`, "sources.s.secrets[0].label: must be a short name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := sources.Load(getenv(secretEnv), writeFile(t, `sources: [{name: s, type: github, secrets: [`+tt.ref+`]}]`), time.Minute)
			require.ErrorContains(t, err, tt.want)
			for _, leak := range []string{secret, "a+b/c=", "8f3a9c2b7d1e4f60a5b8c9d0e1f2a3b4", "dGhpcyBpcyBhIHNlY3JldA==", "my_webhook_secret_2024"} {
				require.NotContains(t, err.Error(), leak)
			}
		})
	}
	for _, label := range []string{"current", "previous", "2024-06-rotation", "STRIPE_WEBHOOK_SECRET#1", "key.v2"} {
		_, _, err := sources.Load(getenv(secretEnv), writeFile(t, `sources: [{name: s, type: github, secrets: [{label: "`+label+`", env: GH_SECRET}]}]`), time.Minute)
		require.NoError(t, err, label)
	}
}

func TestAbsurdBodyLimitsAreRefused(t *testing.T) {
	t.Parallel()
	_, _, err := sources.Load(getenv(secretEnv), writeFile(t, `sources: [{name: s, type: github, max_body_bytes: 1073741824, secrets: [{label: a, env: GH_SECRET}]}]`), time.Minute)
	require.ErrorContains(t, err, `sources.s.max_body_bytes: 1073741824 must be between 1 and 33554432`)
}
