package verify_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hookline/hookline/internal/verify"
)

// The fuzz targets check three things of every input: Verify never panics,
// it answers quickly whatever the header, and it never accepts a request
// that an independent computation (strings.Split and the standard library,
// or the provider's own library) does not find correctly signed. Run one
// with: go test -run '^$' -fuzz '^FuzzStripe$' -fuzztime 10s ./internal/verify
//
// The pathological seeds are a few hundred bytes, not the 64 KiB of
// TestPathologicalHeaders: the fuzzer minimizes every new interesting input,
// byte by byte, and on 64 KiB inputs that stalls a short run.

const fuzzNow = 1700000000

var fuzzSecrets = []string{"whsec_a", "whsec_b"}

// fuzzVerify runs Verify and fails on a slow answer or an error that is not
// an *Error with a known reason. It returns whether the request passed.
func fuzzVerify(t *testing.T, run func() error) bool {
	t.Helper()
	start := time.Now()
	err := run()
	// The real figure is microseconds; a second means a super-linear parse.
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Verify took %s", d)
	}
	if err == nil {
		return true
	}
	var ve *verify.Error
	if !errors.As(err, &ve) || !knownReasons[ve.Reason] {
		t.Fatalf("unexpected error %#v", err)
	}
	return false
}

var knownReasons = map[verify.Reason]bool{
	verify.ReasonMissingHeader: true, verify.ReasonMalformedHeader: true, verify.ReasonNoMatch: true,
	verify.ReasonTooOld: true, verify.ReasonTooNew: true, verify.ReasonLivemodeMismatch: true,
}

// inWindow is the oracle's own window check, on a decimal string.
func inWindow(ts string, tolerance int64) bool {
	n, err := strconv.ParseInt(ts, 10, 64)
	return err == nil && n >= fuzzNow-tolerance && n <= fuzzNow+tolerance
}

func mac(h func() hash.Hash, key string, parts ...string) []byte {
	m := hmac.New(h, []byte(key))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func FuzzStripe(f *testing.F) {
	body := []byte(`{"id":"evt_1","livemode":true}`)
	good := verify.SignStripe("whsec_a", body, time.Unix(fuzzNow, 0))
	f.Add(good, body)
	f.Add(good+",v1="+strings.Repeat("0", 64)+", v0=abc", body)
	f.Add(verify.SignStripe("whsec_b", []byte(`{"livemode":false}`), time.Unix(fuzzNow, 0)), []byte(`{"livemode":false}`))
	f.Add("t=1700000000,t=1700000001,v1=", []byte{})
	f.Add(strings.Repeat(",", 256), body)
	f.Add(strings.Repeat("v1=zz,", 40)+"t=1700000000", body)
	live := true
	plain, err := verify.NewStripeWith(rotation(fuzzSecrets...), verify.StripeOptions{Now: fixedNow(fuzzNow)})
	if err != nil {
		f.Fatal(err)
	}
	livemode, err := verify.NewStripeWith(rotation(fuzzSecrets...), verify.StripeOptions{Now: fixedNow(fuzzNow), Livemode: &live})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		h := headers(verify.StripeHeader, header)
		ok := fuzzVerify(t, func() error { return plain.Verify(h, body) })
		okLive := fuzzVerify(t, func() error { return livemode.Verify(h, body) })
		if ok && !stripeOracle(header, body) {
			t.Fatalf("accepted %q for body %q", header, body)
		}
		if okLive && (!ok || !livemodeTrue(body)) {
			t.Fatalf("livemode verifier accepted %q for body %q", header, body)
		}
	})
}

// stripeOracle reports whether some t and some v1 of header, read the
// naive way, are a stripe-go signature of body within the window.
func stripeOracle(header string, body []byte) bool {
	var stamps []int64
	var sigs [][]byte
	for _, elem := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(elem), "=")
		if n, err := strconv.ParseInt(v, 10, 64); k == "t" && err == nil {
			stamps = append(stamps, n)
		}
		if b, err := hex.DecodeString(v); k == "v1" && err == nil {
			sigs = append(sigs, b)
		}
	}
	for _, ts := range stamps {
		if ts < fuzzNow-300 || ts > fuzzNow+300 {
			continue
		}
		for _, secret := range fuzzSecrets {
			want := webhook.ComputeSignature(time.Unix(ts, 0), body, secret)
			for _, sig := range sigs {
				if bytes.Equal(sig, want) {
					return true
				}
			}
		}
	}
	return false
}

func livemodeTrue(body []byte) bool {
	var top map[string]any
	return json.Unmarshal(body, &top) == nil && top["livemode"] == true
}

func FuzzGitHub(f *testing.F) {
	body := []byte("Hello, World!")
	f.Add(verify.SignGitHub("whsec_a", body), body)
	f.Add(strings.ToUpper(verify.SignGitHub("whsec_b", body)), body)
	f.Add("sha256="+strings.Repeat(",", 256), body)
	v, err := verify.NewGitHub(rotation(fuzzSecrets...))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		if !fuzzVerify(t, func() error { return v.Verify(headers(verify.GitHubSignatureHeader, sig), body) }) {
			return
		}
		for _, secret := range fuzzSecrets {
			if strings.HasPrefix(sig, "sha256=") && strings.EqualFold(sig[7:], hex.EncodeToString(mac(sha256.New, secret, string(body)))) {
				return
			}
		}
		t.Fatalf("accepted %q for body %q", sig, body)
	})
}

func FuzzShopify(f *testing.F) {
	body := []byte(`{"foo": "bar"}`)
	f.Add(verify.SignShopify("whsec_a", body), body)
	f.Add(verify.SignShopify("whsec_b", body)+"\n", body)
	f.Add(strings.Repeat("=", 256), body)
	v, err := verify.NewShopify(rotation(fuzzSecrets...))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		if !fuzzVerify(t, func() error { return v.Verify(headers(verify.ShopifyHMACHeader, sig), body) }) {
			return
		}
		for _, secret := range fuzzSecrets {
			if sig == base64.StdEncoding.EncodeToString(mac(sha256.New, secret, string(body))) {
				return
			}
		}
		t.Fatalf("accepted %q for body %q", sig, body)
	})
}

func FuzzSlack(f *testing.F) {
	body := []byte(`token=x&team_id=T1`)
	sig, ts := verify.SignSlack("whsec_a", time.Unix(fuzzNow, 0), body)
	f.Add(sig, ts, body)
	f.Add(sig, ts+"0", body)
	f.Add(sig, "+"+ts, body)
	f.Add("v0="+strings.Repeat(",", 256), strings.Repeat("9", 256), body)
	v, err := verify.NewSlack(rotation(fuzzSecrets...), verify.SlackOptions{Now: fixedNow(fuzzNow)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sig, ts string, body []byte) {
		h := headers(verify.SlackSignatureHeader, sig, verify.SlackTimestampHeader, ts)
		if !fuzzVerify(t, func() error { return v.Verify(h, body) }) {
			return
		}
		for _, secret := range fuzzSecrets {
			want := hex.EncodeToString(mac(sha256.New, secret, "v0:", ts, ":", string(body)))
			if inWindow(ts, 300) && strings.HasPrefix(sig, "v0=") && strings.EqualFold(sig[3:], want) {
				return
			}
		}
		t.Fatalf("accepted %q at %q for body %q", sig, ts, body)
	})
}

func FuzzStandardWebhooks(f *testing.F) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	body := []byte(`{"test": 2432232314}`)
	sig, err := verify.SignStandardWebhooks(secret, "msg_1", time.Unix(fuzzNow, 0), body)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("msg_1", "1700000000", sig, body, false)
	f.Add("msg_1", "1700000000", "v1a,x v2,y "+sig+" v1,", body, true)
	f.Add("msg.1", "1700000000", strings.Repeat(" ", 256), body, false)
	f.Add("msg_1", "1700000000", strings.Repeat("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ", 8), body, true)
	v, err := verify.NewStandardWebhooks(rotation(secret), verify.StandardWebhooksOptions{Now: fixedNow(fuzzNow)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, svix bool) {
		prefix := "webhook"
		if svix {
			prefix = "svix"
		}
		if !fuzzVerify(t, func() error { return v.Verify(swHeaders(prefix, id, ts, sig), body) }) {
			return
		}
		want := "v1," + base64.StdEncoding.EncodeToString(mac(sha256.New, string(key), id, ".", ts, ".", string(body)))
		if inWindow(ts, 300) {
			for _, entry := range strings.Split(sig, " ") {
				if entry == want {
					return
				}
			}
		}
		t.Fatalf("accepted %q for id %q at %q, body %q", sig, id, ts, body)
	})
}

// fuzzHMACSchemes are the generic schemes FuzzHMAC exercises, with the
// oracle's view of each: how to build the signed content, and how the
// signature is encoded.
var fuzzHMACSchemes = []struct {
	opts    verify.HMACOptions
	hash    func() hash.Hash
	content func(ts, body string) string
}{
	{verify.HMACOptions{Header: "X-Sig"}, sha256.New, func(_, b string) string { return b }},
	{verify.HMACOptions{Header: "X-Sig", Prefix: "sha1=", Algorithm: "sha1", Encoding: "base64"}, sha1.New, func(_, b string) string { return b }},
	{verify.HMACOptions{Header: "X-Sig", Algorithm: "sha512", TimestampHeader: "X-Ts", Template: "{timestamp}:{body}"}, sha512.New,
		func(ts, b string) string { return ts + ":" + b }},
}

func FuzzHMAC(f *testing.F) {
	body := []byte(`{"id":"tr_1"}`)
	for i, s := range fuzzHMACSchemes {
		s.opts.Now = fixedNow(fuzzNow)
		sig, ts, err := verify.SignHMACWith("whsec_a", s.opts, time.Unix(fuzzNow, 0), body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), sig, ts, body)
	}
	f.Add(uint8(2), strings.Repeat("f", 256), "1700000000", body)
	verifiers := make([]*verify.HMAC, len(fuzzHMACSchemes))
	for i, s := range fuzzHMACSchemes {
		s.opts.Now = fixedNow(fuzzNow)
		var err error
		if verifiers[i], err = verify.NewHMACWith(rotation(fuzzSecrets...), s.opts); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, sig, ts string, body []byte) {
		i := int(which) % len(fuzzHMACSchemes)
		s := fuzzHMACSchemes[i]
		h := headers("X-Sig", sig, "X-Ts", ts)
		if !fuzzVerify(t, func() error { return verifiers[i].Verify(h, body) }) {
			return
		}
		if s.opts.TimestampHeader == "" {
			ts = ""
		} else if !inWindow(ts, 300) {
			t.Fatalf("accepted timestamp %q", ts)
		}
		enc, hasPrefix := strings.CutPrefix(sig, s.opts.Prefix)
		got, err := hex.DecodeString(enc)
		if s.opts.Encoding == "base64" {
			got, err = base64.StdEncoding.DecodeString(enc)
		}
		for _, secret := range fuzzSecrets {
			if hasPrefix && err == nil && bytes.Equal(got, mac(s.hash, secret, s.content(ts, string(body)))) {
				return
			}
		}
		t.Fatalf("scheme %d accepted %q at %q for body %q", i, sig, ts, body)
	})
}

// FuzzHMACTemplate fuzzes the template parser: it must never panic, must
// accept only templates that sign the body once, and must sign exactly the
// content a naive substitution gives.
func FuzzHMACTemplate(f *testing.F) {
	for _, tpl := range []string{"{body}", "{timestamp}.{body}", "v0:{timestamp}:{body}", "", "{", "}", "{{body}}",
		"{body}{body}", "{Body}", "{timestamp}", strings.Repeat("{", 256), strings.Repeat("{body}", 40)} {
		f.Add(tpl, true, []byte("{}"))
		f.Add(tpl, false, []byte("{}"))
	}
	f.Fuzz(func(t *testing.T, tpl string, withTS bool, body []byte) {
		opts := verify.HMACOptions{Header: "X-Sig", Template: tpl, Now: fixedNow(fuzzNow)}
		if withTS {
			opts.TimestampHeader = "X-Ts"
		}
		start := time.Now()
		v, err := verify.NewHMACWith(rotation("k"), opts)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("compiling took %s", d)
		}
		if err != nil {
			return
		}
		if tpl == "" {
			tpl = map[bool]string{false: "{body}", true: "{timestamp}.{body}"}[withTS]
		}
		if strings.Count(tpl, "{body}") != 1 || strings.Count(tpl, "{timestamp}") != map[bool]int{false: 0, true: 1}[withTS] {
			t.Fatalf("accepted template %q (timestamp header: %v)", tpl, withTS)
		}
		sig, ts, err := verify.SignHMACWith("k", opts, time.Unix(fuzzNow, 0), body)
		if err != nil {
			t.Fatal(err)
		}
		content := strings.Replace(strings.Replace(tpl, "{timestamp}", ts, 1), "{body}", string(body), 1)
		if want := hex.EncodeToString(mac(sha256.New, "k", content)); sig != want {
			t.Fatalf("template %q signed %q, want HMAC of %q", tpl, sig, content)
		}
		h := headers("X-Sig", sig, "X-Ts", ts)
		if err := v.Verify(h, body); err != nil {
			t.Fatalf("template %q: own signature refused: %v", tpl, err)
		}
		if err := v.Verify(h, append(body, 'x')); err == nil {
			t.Fatalf("template %q: accepted a changed body", tpl)
		}
	})
}
