package hostile_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
	"github.com/hookline/hookline/internal/verify"
)

// maxBody is the receiver's MAX_BODY_BYTES in these tests: small enough to
// exceed cheaply, large enough for 100,000 nested brackets.
const maxBody = 256 << 10

const bankPath = "/api/webhooks/bank"

type hostileCase struct {
	name string
	raw  []byte
	// status lists the acceptable answers; 0 stands for a connection the
	// server closed without one.
	status []int
	// msg must appear in the answer's body.
	msg string
	// allow, if set, must appear in the Allow header.
	allow string
}

// TestHostileInputGetsAClearStatusAndStoresNothing sends each hostile
// request to a real receiver and checks its answer, that nothing was
// stored, and (at cleanup) that no secret, body text or signature was
// logged or exported in a span: the receiver traces every request to its
// standard output (OTEL_TRACES_EXPORTER=console), which the cluster's log
// check reads. It ends with a normal delivery, which must still succeed.
func TestHostileInputGetsAClearStatusAndStoresNothing(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	r := c.StartReceiver(t, fmt.Sprintf("MAX_BODY_BYTES=%d", maxBody),
		"OTEL_TRACES_EXPORTER=console", "OTEL_BSP_SCHEDULE_DELAY=100")

	var cases []hostileCase
	add := func(name string, raw []byte, msg string, status ...int) {
		cases = append(cases, hostileCase{name: name, raw: raw, status: status, msg: msg})
	}

	// Bodies over the limit.
	add("body over the limit with Content-Length gets 413 before a byte of it is sent",
		request(http.MethodPost, bankPath, []string{"Content-Length: 104857600", bankSig(nil)}, nil),
		fmt.Sprintf("The body is larger than the limit of %d bytes", maxBody), 413)
	chunk := bytes.Repeat([]byte(ledgertest.Canary), 200_000/len(ledgertest.Canary))
	var chunked bytes.Buffer
	for range 2 {
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	chunked.WriteString("0\r\n\r\n")
	add("chunked body over the limit without Content-Length gets 413",
		request(http.MethodPost, bankPath, []string{"Transfer-Encoding: chunked", bankSig(nil)}, chunked.Bytes()),
		fmt.Sprintf("The body is larger than the limit of %d bytes", maxBody), 413)

	// Signed bodies that must not become events.
	signed := func(name string, body []byte, msg string) {
		add(name, post(bankPath, []string{bankSig(body)}, body), msg, 400)
	}
	signed("invalid UTF-8 in a signed body gets 400",
		fmt.Appendf(nil, `{"id":%q,"memo":"%s `+"\xc3\x28"+`"}`, nextID("utf8"), ledgertest.Canary),
		"Malformed event body: body is not valid UTF-8")
	deep := fmt.Appendf(nil, `{"id":%q,"a":%s%s}`, nextID("deep"), strings.Repeat("[", 100_000), strings.Repeat("]", 100_000))
	signed("100000 nested brackets under a valid signature get 400",
		deep, "Malformed event body: JSON nested deeper than 64 levels")
	signed("65 nested objects under a valid signature get 400",
		fmt.Appendf(nil, `{"id":%q,"a":%s1%s}`, nextID("deep"), strings.Repeat(`{"b":`, 64), strings.Repeat("}", 64)),
		"JSON nested deeper than 64 levels")
	for _, tt := range []struct{ name, id, msg string }{
		{"empty", `""`, "missing id (JSON field id)"},
		{"256 bytes long", fmt.Sprintf("%q", strings.Repeat("e", 256)), "id is 256 bytes, more than 255"},
		{"a number", `12345`, "id (JSON field id) must be a string, not a number"},
		{"an object", `{"id":"evt_1"}`, "id (JSON field id) must be a string, not an object"},
		{"an array", `["evt_1"]`, "id (JSON field id) must be a string, not an array"},
		{"a boolean", `true`, "id (JSON field id) must be a string, not a boolean"},
		{"null", `null`, "missing id (JSON field id)"},
		{"a NUL byte", `"evt\u0000x"`, "id has a control character at byte 3"},
	} {
		signed("signed body whose id is "+tt.name+" gets 400 naming the field",
			fmt.Appendf(nil, `{"id":%s,"type":"transfer.settled","memo":%q}`, tt.id, ledgertest.Canary), tt.msg)
	}
	// Ambiguous JSON: gjson, and so the envelope, reads a key's first value,
	// encoding/json, and so the handlers, its last, matching case too. The
	// review stored an event under its first id and type and credited its
	// second amount.
	signed("a second id, type and amount under a valid signature get 400",
		fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled","account":"acc_h","amount_cents":100,"memo":%q,"id":%q,"type":"transfer.reversed","amount_cents":999999}`,
			nextID("dupkey"), ledgertest.Canary, nextID("dupkey")),
		"Malformed event body: duplicate key in a JSON object")
	signed("a second id written with an escape gets 400",
		fmt.Appendf(nil, `{"id":%q,"i\u0064":%q,"memo":%q}`, nextID("dupkey"), nextID("dupkey"), ledgertest.Canary),
		"Malformed event body: duplicate key in a JSON object")
	signed("a case variant of amount_cents gets 400",
		fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled","account":"acc_h","amount_cents":100,"Amount_Cents":999999,"memo":%q}`, nextID("fold"), ledgertest.Canary),
		"Malformed event body: keys that differ only in case in a JSON object")
	foldStripe := fmt.Appendf(nil, `{"id":%q,"type":"charge.succeeded","data":{"object":{"amount":100,"customer":"cus_h"}},"Data":{"Object":{"Amount":999999}},"memo":%q}`,
		nextID("fold"), ledgertest.Canary)
	add("a Stripe event with Data/Object/Amount beside data/object/amount gets 400",
		post("/api/webhooks/stripe", []string{stripeSig(foldStripe)}, foldStripe),
		"Malformed event body: keys that differ only in case in a JSON object", 400)
	for _, lone := range []string{`\ud800`, `\udbff`, `\udfff`} {
		signed("an id with the lone surrogate escape "+lone+" gets 400",
			fmt.Appendf(nil, `{"id":"evt_%s","type":"transfer.settled","memo":%q}`, lone, ledgertest.Canary),
			"id (JSON field id) holds a lone UTF-16 surrogate escape")
	}
	signed("a type with a lone surrogate escape gets 400",
		fmt.Appendf(nil, `{"id":%q,"type":"transfer.\udc00","memo":%q}`, nextID("lone"), ledgertest.Canary),
		"type (JSON field type) holds a lone UTF-16 surrogate escape")
	stripeBody := fmt.Appendf(nil, `{"id":12,"type":"charge.succeeded","memo":%q}`, ledgertest.Canary)
	add("signed Stripe event whose id is a number gets 400 naming the field",
		post("/api/webhooks/stripe", []string{stripeSig(stripeBody)}, stripeBody),
		"id (JSON field id) must be a string, not a number", 400)

	// Compressed bodies: the signature covers the bytes as sent.
	plain := bankBody(nextID("gz"))
	var gz, zl bytes.Buffer
	gw := gzip.NewWriter(&gz)
	_, _ = gw.Write(plain)
	require.NoError(t, gw.Close())
	zw := zlib.NewWriter(&zl)
	_, _ = zw.Write(plain)
	require.NoError(t, zw.Close())
	for _, tt := range []struct {
		enc  string
		body []byte
	}{{"gzip", gz.Bytes()}, {"deflate", zl.Bytes()}, {"br", gz.Bytes()}, {"x-gzip", gz.Bytes()}, {"identity, gzip", gz.Bytes()}} {
		add("Content-Encoding "+tt.enc+" gets 415 even correctly signed",
			post(bankPath, []string{"Content-Encoding: " + tt.enc, bankSig(tt.body)}, tt.body),
			"Content-Encoding is not supported: send the body uncompressed, as signed", 415)
	}
	add("Content-Encoding gzip over the uncompressed signed body gets 415",
		post(bankPath, []string{"Content-Encoding: gzip", bankSig(plain)}, gz.Bytes()),
		"Content-Encoding is not supported", 415)

	// Signature headers with thousands of entries.
	sbody := fmt.Appendf(nil, `{"id":%q,"type":"charge.succeeded","memo":%q}`, nextID("sig"), ledgertest.Canary)
	good := stripeSig(sbody)
	ts, goodV1, _ := strings.Cut(strings.TrimPrefix(good, "Stripe-Signature: "), ",")
	decoy := "v1=" + strings.Repeat("ab", 32)
	add("Stripe-Signature with 900 wrong v1 entries gets 400",
		post("/api/webhooks/stripe", []string{"Stripe-Signature: " + ts + "," + strings.Repeat(decoy+",", 900)}, sbody),
		"Invalid signature", 400)
	add("Stripe-Signature with the valid v1 after 900 decoys gets 400: only 64 are compared",
		post("/api/webhooks/stripe", []string{"Stripe-Signature: " + ts + "," + strings.Repeat(decoy+",", 900) + goodV1}, sbody),
		"Invalid signature", 400)
	add("Stripe-Signature with 5000 malformed entries gets 400",
		post("/api/webhooks/stripe", []string{"Stripe-Signature: " + ts + "," + strings.Repeat("v1=0,", 5000)}, sbody),
		"Invalid signature", 400)
	add("Stripe-Signature with 5000 full v1 entries is over the header limit: 431",
		post("/api/webhooks/stripe", []string{"Stripe-Signature: " + ts + "," + strings.Repeat(decoy+",", 5000)}, sbody),
		"Request Header Fields Too Large", 431)
	bbody := bankBody(nextID("sig"))
	add("bank signature of 60000 hex digits gets 400",
		post(bankPath, []string{"X-Hmac-Signature: " + strings.Repeat("a", 60_000)}, bbody), "Invalid signature", 400)
	add("bank signature of 200000 bytes is over the header limit: 431",
		post(bankPath, []string{"X-Hmac-Signature: " + strings.Repeat("a", 200_000)}, bbody), "Request Header Fields Too Large", 431)

	// Huge and numerous headers.
	add("one header of 100 KiB gets 431",
		post(bankPath, []string{bankSig(bbody), "X-Junk: " + strings.Repeat("j", 100<<10)}, bbody), "Request Header Fields Too Large", 431)
	var many []string
	for i := range 20_000 {
		many = append(many, fmt.Sprintf("X-H%d: v", i))
	}
	add("20000 headers get 431", post(bankPath, append([]string{bankSig(bbody)}, many...), bbody), "Request Header Fields Too Large", 431)
	add("3000 headers within the limit but no signature get 400",
		post(bankPath, many[:3000], bbody), "Invalid signature", 400)

	// Trace headers from the internet are ignored, so nothing of them
	// reaches a span; nor does a signature, valid for another body.
	otherSig := verify.SignHMAC(clustertest.BankSecret, bankBody(nextID("other")))
	c.Forbid(otherSig)
	add("a signature for another body, with trace headers carrying the canary, gets 400",
		post(bankPath, []string{verify.HMACHeader + ": " + otherSig,
			"Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"Tracestate: vendor=" + ledgertest.Canary,
			"Baggage: memo=" + ledgertest.Canary}, bbody),
		"Invalid signature", 400)

	// Path traversal: each carries a validly signed bank event, so a path
	// that some layer normalised into /api/webhooks/bank would be stored.
	for _, target := range []string{
		"/api/webhooks/../admin",
		"/api/webhooks/../webhooks/bank",
		"/api/webhooks/./bank",
		"/api/webhooks/%2e%2e%2fadmin",
		"/api/webhooks/%2e%2e/%2e%2e/etc/passwd",
		"/api/webhooks/..%2f..%2fetc%2fpasswd",
		"/api/webhooks/bank%2f..%2fbank",
		"/api/webhooks/bank%2f",
		"/api/webhooks/bank%00",
		"/api/webhooks/%00",
		"/api/webhooks/..%5c..%5cwindows",
		"/api/webhooks/BANK",
		"/api/webhooks/nosuchsource",
	} {
		add("source name "+target+" gets 404", post(target, []string{bankSig(bbody)}, bbody), "Unknown source", 404)
	}
	add("a raw NUL byte in the request line gets 400 from the HTTP server",
		post("/api/webhooks/bank\x00", []string{bankSig(bbody)}, bbody), "Bad Request", 400)
	add("a backslash traversal gets 400 or 404",
		post(`/api/webhooks/..\..\admin`, []string{bankSig(bbody)}, bbody), "", 400, 404)

	// Methods other than POST, each with a signed body.
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete, "PROPFIND"} {
		cases = append(cases, hostileCase{name: m + " gets 405 with Allow: POST",
			raw:    request(m, bankPath, []string{bankSig(bbody), fmt.Sprintf("Content-Length: %d", len(bbody))}, bbody),
			status: []int{405}, msg: "Method not allowed", allow: "POST"})
	}
	cases = append(cases,
		hostileCase{name: "HEAD gets 405 with Allow: POST", raw: request(http.MethodHead, bankPath, nil, nil), status: []int{405}, allow: "POST"},
		hostileCase{name: "OPTIONS gets 204 listing POST in Allow", raw: request(http.MethodOptions, bankPath, nil, nil), status: []int{204}, allow: "POST"},
	)

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			a := roundTrip(t, r.Addr, tt.raw)
			require.True(t, slices.Contains(tt.status, a.status), "answer %s, want status in %v", a, tt.status)
			require.Contains(t, a.body, tt.msg, "answer %s", a)
			if tt.allow != "" {
				require.Contains(t, a.header.Get("Allow"), tt.allow)
			}
			events, jobs := stored(t, c)
			require.Zero(t, events, "inbox rows after %q", tt.name)
			require.Zero(t, jobs, "process_event jobs after %q", tt.name)
		})
	}

	// The server is still there for the honest sender.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, err := deliver(ctx, http.DefaultClient, r.URL, nextID("after"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	events, jobs := stored(t, c)
	require.Equal(t, 1, events)
	require.Equal(t, 1, jobs)

	// A clean stop flushes the last spans, so that the log check at
	// cleanup sees every one; they must be there, or it proves nothing.
	require.NoError(t, r.Stop(t, syscall.SIGTERM, 30*time.Second))
	out := r.Out.String()
	require.Contains(t, out, `"Name":"hookline.receive"`)
	require.Contains(t, out, `"Name":"hookline.verify"`)
	require.Contains(t, out, `"Name":"hookline.commit"`)
}
