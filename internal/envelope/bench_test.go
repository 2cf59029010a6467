package envelope_test

import (
	"fmt"
	"strings"
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

// BenchmarkExtractLargeStripeEvent times it on an event the size Stripe
// sends for an invoice: a data.object of some 60 keys, past the 16 at which
// CheckKeys indexes an object's keys, with nested objects and lists.
func BenchmarkExtractLargeStripeEvent(b *testing.B) {
	x := envelope.Extractor{
		ID: envelope.Locator{JSON: "id"}, Type: envelope.Locator{JSON: "type"}, APIVersion: envelope.Locator{JSON: "api_version"},
		Object: envelope.Locator{JSON: "data.object.id"}, Time: []envelope.Locator{{JSON: "created"}}, ReadObjects: []string{"data.object"},
	}
	var o strings.Builder
	o.WriteString(`{"id":"in_1","object":"invoice"`)
	for i := range 50 {
		fmt.Fprintf(&o, `,"field_%d":"value %d"`, i, i)
	}
	o.WriteString(`,"lines":{"object":"list","data":[`)
	for i := range 5 {
		if i > 0 {
			o.WriteString(",")
		}
		fmt.Fprintf(&o, `{"id":"il_%d","amount":1000,"currency":"usd","description":"line %d","period":{"end":1700000000,"start":1697000000},"price":{"id":"price_1","recurring":{"interval":"month"}},"metadata":{}}`, i, i)
	}
	o.WriteString(`],"has_more":false},"metadata":{"order":"42","Order":"43"}}`)
	body := []byte(`{"id":"evt_1","object":"event","api_version":"2023-10-16","created":1700000000,"livemode":false,"pending_webhooks":1,` +
		`"request":{"id":null,"idempotency_key":null},"type":"invoice.paid","data":{"object":` + o.String() + `}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Extract(nil, body); err != nil {
			b.Fatal(err)
		}
	}
}
