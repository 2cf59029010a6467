package sources_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/sources"
)

// TestEachProviderLocatesItsEventTimeAndObject reads, per provider type,
// the event time and the object key that ordered handlers order by, from a
// delivery shaped as that provider sends it (docs/SOURCES.md).
func TestEachProviderLocatesItsEventTimeAndObject(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, source string
		header       http.Header
		body         string
		time         time.Time // zero: the source has none, the received time stands in
		object       string
		objectFrom   string
		timeFrom     string
	}{
		{"stripe: created and data.object.id", `{name: s, type: stripe, secrets: [{label: a, env: GH_SECRET}]}`, nil,
			`{"id":"evt_1","type":"customer.subscription.updated","created":1796032800,"data":{"object":{"id":"sub_1"}}}`,
			at, "sub_1", "JSON field data.object.id", "JSON field created, else received time"},
		{"github: no time and no object", `{name: s, type: github, secrets: [{label: a, env: GH_SECRET}]}`,
			http.Header{"X-Github-Delivery": {"d1"}, "X-Github-Event": {"push"}}, `{"after":"abc"}`,
			time.Time{}, "", "", "received time"},
		{"shopify: X-Shopify-Triggered-At and the resource's graphql id", `{name: s, type: shopify, secrets: [{label: a, env: GH_SECRET}]}`,
			http.Header{"X-Shopify-Webhook-Id": {"w1"}, "X-Shopify-Topic": {"orders/updated"}, "X-Shopify-Triggered-At": {"2026-11-30T10:00:00.000000Z"}},
			`{"id":820982911946154500,"admin_graphql_api_id":"gid://shopify/Order/820982911946154500"}`,
			at, "gid://shopify/Order/820982911946154500", "JSON field admin_graphql_api_id", "header X-Shopify-Triggered-At, else received time"},
		{"shopify with an XML body: no object, and the time from the header", `{name: s, type: shopify, secrets: [{label: a, env: GH_SECRET}]}`,
			http.Header{"X-Shopify-Webhook-Id": {"w1"}, "X-Shopify-Topic": {"orders/updated"}, "X-Shopify-Triggered-At": {"2026-11-30T10:00:00Z"}},
			`<?xml version="1.0" encoding="UTF-8"?><order><id type="integer">820982911946154500</id></order>`,
			at, "", "JSON field admin_graphql_api_id", "header X-Shopify-Triggered-At, else received time"},
		{"slack: event_time", `{name: s, type: slack, secrets: [{label: a, env: GH_SECRET}]}`, nil,
			`{"event_id":"Ev1","event_time":1796032800,"event":{"type":"app_mention"}}`,
			at, "", "", "JSON field event_time, else received time"},
		{"standard webhooks: the body's timestamp before the attempt's", `{name: s, type: standardwebhooks, secrets: [{label: a, env: SVIX_SECRET}]}`,
			http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {"1795950000"}, "Webhook-Signature": {"v1,x"}},
			`{"type":"invoice.paid","timestamp":"2026-11-30T10:00:00Z","data":{}}`,
			at, "", "", "JSON field timestamp, else header webhook-timestamp or svix-timestamp, whichever set is signed, else received time"},
		{"standard webhooks without a body timestamp: the signed webhook-timestamp", `{name: s, type: standardwebhooks, secrets: [{label: a, env: SVIX_SECRET}]}`,
			http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {"1796032800"}, "Webhook-Signature": {"v1,x"}},
			`{"type":"invoice.paid","data":{}}`,
			at, "", "", "JSON field timestamp, else header webhook-timestamp or svix-timestamp, whichever set is signed, else received time"},
		{"hmac: configured locators, a numeric object", `{name: s, type: hmac, object: {json: data.account}, time: {json: occurred_at}, secrets: [{label: a, env: GH_SECRET}]}`, nil,
			`{"id":"e1","type":"t","occurred_at":"2026-11-30T11:00:00+01:00","data":{"account":42}}`,
			at, "42", "JSON field data.account", "JSON field occurred_at, else received time"},
		{"stripe with the object overridden", `{name: s, type: stripe, object: {json: data.object.customer}, secrets: [{label: a, env: GH_SECRET}]}`, nil,
			`{"id":"evt_1","type":"invoice.paid","created":1796032800,"data":{"object":{"id":"in_1","customer":"cus_1"}}}`,
			at, "cus_1", "JSON field data.object.customer", "JSON field created, else received time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srcs, sums, err := sources.Load(getenv(secretEnv), writeFile(t, "sources: ["+tt.source+"]"), time.Minute)
			require.NoError(t, err)
			require.Equal(t, tt.objectFrom, sums[0].Object)
			require.Equal(t, tt.timeFrom, sums[0].Time)
			env, err := srcs[0].Envelope.Extract(tt.header, []byte(tt.body))
			require.NoError(t, err)
			require.True(t, tt.time.Equal(env.Time), "time %s, want %s", env.Time, tt.time)
			require.Equal(t, tt.object, env.Object)
		})
	}
}

// TestUnsignedOrderingHeadersAreWarnedAbout: an object or a time read
// from a header the scheme does not sign is attacker-controlled, and
// `hookctl sources` says so; a signed timestamp header is not warned about.
func TestUnsignedOrderingHeadersAreWarnedAbout(t *testing.T) {
	t.Parallel()
	_, sums, err := sources.Load(getenv(secretEnv), writeFile(t, `sources:
  - {name: a, type: hmac, object: {header: X-Account}, time: {header: X-Sent-At}, secrets: [{label: a, env: GH_SECRET}]}
  - {name: b, type: hmac, time: {header: x-timestamp}, hmac: {header: X-Sig, timestamp_header: X-Timestamp}, secrets: [{label: a, env: GH_SECRET}]}
`), time.Minute)
	require.NoError(t, err)
	require.Equal(t, []string{
		`source "a" takes its object key from header X-Account, which the hmac scheme does not sign: ordered handlers would trust it to order and serialise the event`,
		`source "a" takes its event time from header X-Sent-At, which the hmac scheme does not sign: ordered handlers would trust it to tell a stale event from a new one`,
	}, sums[0].Warnings)
	require.Empty(t, sums[1].Warnings)

	_, _, err = sources.Load(getenv(secretEnv), writeFile(t, `sources: [{name: a, type: hmac, object: {header: X, json: y}, secrets: [{label: a, env: GH_SECRET}]}]`), time.Minute)
	require.ErrorContains(t, err, "sources.a.object: set exactly one of header and json")
}
