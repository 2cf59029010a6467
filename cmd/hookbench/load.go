package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/internal/verify"
)

// events hands out signed events of one source (bank, unless stripe is
// set), each unique, with a share of replays of events handed out before.
// It remembers which ones were acknowledged, for the no-loss check at the
// end.
type events struct {
	run    string
	secret string
	// stripe makes the events Stripe events, signed as Stripe signs them,
	// for the stripe source; otherwise they are bank events.
	stripe   bool
	dupShare float64
	next     atomic.Int64
	acked    []atomic.Bool
	ackedAt  []atomic.Int64 // unix nanos of the first 200, for end-to-end latency
}

func newEvents(run, secret string, dupShare float64, capacity int) *events {
	return &events{run: run, secret: secret, dupShare: dupShare,
		acked: make([]atomic.Bool, capacity), ackedAt: make([]atomic.Int64, capacity)}
}

// pick returns the number of the event to send: a new one, or with
// probability dupShare one sent before. ok is false when capacity is spent.
func (e *events) pick() (n int64, ok bool) {
	issued := e.next.Load()
	if issued > 0 && rand.Float64() < e.dupShare {
		return rand.Int64N(issued), true
	}
	n = e.next.Add(1) - 1
	return n, n < int64(len(e.acked))
}

func (e *events) id(n int64) string { return fmt.Sprintf("bench_%s_%d", e.run, n) }

// path is the webhook path of the events' source.
func (e *events) path() string {
	if e.stripe {
		return "/api/webhooks/stripe"
	}
	return "/api/webhooks/bank"
}

func (e *events) request(ctx context.Context, url string, n int64) *http.Request {
	var body []byte
	if e.stripe {
		// The shape of a Stripe event, at about the size of a small one.
		body = fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"pending_webhooks":1,"type":"payment_intent.succeeded","data":{"object":{"id":"pi_%d","object":"payment_intent","amount":1250,"currency":"usd","customer":"cus_%d","status":"succeeded"}}}`,
			e.id(n), time.Now().Unix(), n, n%accounts)
	} else {
		body = fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled","account":"acc_%d","amount_cents":1}`, e.id(n), n%accounts)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if e.stripe {
		req.Header.Set(verify.StripeHeader, verify.SignStripe(e.secret, body, time.Now()))
	} else {
		req.Header.Set(verify.HMACHeader, verify.SignHMAC(e.secret, body))
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

func (e *events) ack(n int64, at time.Time) {
	if !e.acked[n].Swap(true) {
		e.ackedAt[n].Store(at.UnixNano())
	}
}

// ackedIDs returns the ids of every acknowledged event.
func (e *events) ackedIDs() map[string]bool {
	ids := make(map[string]bool)
	for n := range min(e.next.Load(), int64(len(e.acked))) {
		if e.acked[n].Load() {
			ids[e.id(n)] = true
		}
	}
	return ids
}

// loadResult is what one load phase measured.
type loadResult struct {
	Sent       int         `json:"sent"`
	OK         int         `json:"ok"`
	Failed     int         `json:"failed"`
	Codes      map[int]int `json:"codes"`
	Rate       float64     `json:"events_per_sec"`
	P50        float64     `json:"p50_ms"`
	P99        float64     `json:"p99_ms"`
	P999       float64     `json:"p999_ms"`
	Duration   float64     `json:"duration_sec"`
	TargetRate float64     `json:"target_rate,omitempty"`
}

type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	codes     map[int]int
	failed    int
}

func (r *recorder) record(lat time.Duration, code int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latencies = append(r.latencies, lat)
	if err != nil {
		r.failed++
		return
	}
	r.codes[code]++
}

func (r *recorder) result(elapsed time.Duration) loadResult {
	slices.Sort(r.latencies)
	q := func(p float64) float64 {
		if len(r.latencies) == 0 {
			return 0
		}
		i := min(len(r.latencies)-1, int(p*float64(len(r.latencies))))
		return float64(r.latencies[i].Microseconds()) / 1000
	}
	ok := r.codes[http.StatusOK]
	return loadResult{
		Sent: len(r.latencies), OK: ok, Failed: len(r.latencies) - ok, Codes: r.codes,
		Rate: float64(ok) / elapsed.Seconds(), P50: q(0.50), P99: q(0.99), P999: q(0.999), Duration: elapsed.Seconds(),
	}
}

func send(client *http.Client, req *http.Request) (int, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// closedLoop keeps conns requests in flight for d: each client sends its
// next event as soon as the last is answered. It finds the sustained maximum.
func closedLoop(ctx context.Context, url string, ev *events, conns int, d time.Duration) loadResult {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	rec := &recorder{codes: map[int]int{}}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				n, ok := ev.pick()
				if !ok {
					return
				}
				t0 := time.Now()
				code, err := send(client, ev.request(context.WithoutCancel(ctx), url, n))
				now := time.Now()
				if ctx.Err() != nil && err != nil {
					return
				}
				if code == http.StatusOK {
					ev.ack(n, now)
				}
				rec.record(now.Sub(t0), code, err)
			}
		})
	}
	wg.Wait()
	return rec.result(time.Since(start))
}

// openLoop sends rate events a second for d, whatever the answers, and
// measures each latency from the moment the event was due, so a slow server
// cannot hide its queueing (no coordinated omission). At most maxInFlight
// requests are outstanding; events due beyond that wait, and their wait
// counts in their latency.
func openLoop(ctx context.Context, url string, ev *events, rate float64, d time.Duration, maxInFlight int) loadResult {
	client := newClient(maxInFlight)
	defer client.CloseIdleConnections()
	rec := &recorder{codes: map[int]int{}}
	due := make(chan time.Time, maxInFlight*4)
	var wg sync.WaitGroup
	for range maxInFlight {
		wg.Go(func() {
			for t := range due {
				n, ok := ev.pick()
				if !ok {
					continue
				}
				code, err := send(client, ev.request(ctx, url, n))
				now := time.Now()
				if code == http.StatusOK {
					ev.ack(n, now)
				}
				rec.record(now.Sub(t), code, err)
			}
		})
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	total := int(rate * d.Seconds())
	for i := 0; i < total && ctx.Err() == nil; {
		now := time.Now()
		for ; i < total; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.After(now) {
				break
			}
			due <- at
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(due)
	wg.Wait()
	res := rec.result(time.Since(start))
	res.TargetRate = rate
	return res
}
