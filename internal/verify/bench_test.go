package verify_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/verify"
)

// The cost of verification per request, which bounds the receiver's ceiling.
// Run with: go test -run '^$' -bench . -benchmem ./internal/verify

func BenchmarkHMACVerify(b *testing.B) {
	body := []byte(`{"id":"tr_1","type":"transfer.settled","account":"acc_9","amount_cents":1250}`)
	v, _ := verify.NewHMAC(verify.HMACHeader, []string{"secret"})
	h := http.Header{verify.HMACHeader: {verify.SignHMAC("secret", body)}}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStripeVerify(b *testing.B) {
	body := []byte(`{"id":"evt_1","type":"charge.succeeded","data":{"object":{"amount":2000,"customer":"cus_1"}}}`)
	v, _ := verify.NewStripe([]string{"whsec_1"}, 5*time.Minute)
	h := http.Header{verify.StripeHeader: {verify.SignStripe("whsec_1", body, time.Now())}}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}
