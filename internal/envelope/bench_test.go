package envelope_test

import (
	"testing"

	"github.com/hookline/hookline/internal/envelope"
)

// BenchmarkExtractStripeEvent times the receiver's envelope step on a small
// Stripe event with Stripe's locators: the depth, UTF-8 and key scans and
// the field reads, once per request.
func BenchmarkExtractStripeEvent(b *testing.B) {
	x := envelope.Extractor{
		ID: envelope.Locator{JSON: "id"}, Type: envelope.Locator{JSON: "type"}, APIVersion: envelope.Locator{JSON: "api_version"},
		Object: envelope.Locator{JSON: "data.object.id"}, Time: []envelope.Locator{{JSON: "created"}}, ReadObjects: []string{"data.object"},
	}
	body := []byte(`{"id":"evt_1","object":"event","api_version":"2023-10-16","created":1700000000,"livemode":false,"pending_webhooks":1,"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent","amount":1250,"currency":"usd","customer":"cus_1","status":"succeeded","metadata":{"order":"42"}}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Extract(nil, body); err != nil {
			b.Fatal(err)
		}
	}
}
