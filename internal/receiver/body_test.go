package receiver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/verify"
)

type budgetBundle struct {
	budget *receiver.BodyBudget
	ing    *countingIngester
	logs   *logtest.Buffer
	addr   string
}

// setupBudget serves the bank source over real HTTP with a body limit and
// a budget for body bytes in flight.
func setupBudget(t *testing.T, limit, budget int64) *budgetBundle {
	t.Helper()
	v, err := verify.NewHMAC(verify.HMACHeader, []string{bankSecret})
	require.NoError(t, err)
	b := &budgetBundle{budget: receiver.NewBodyBudget(budget), ing: &countingIngester{}, logs: &logtest.Buffer{}}
	h := receiver.New(slog.New(slog.NewJSONHandler(b.logs, nil)), []receiver.Source{{Name: "bank", Verifier: v}}, b.ing, nil,
		receiver.Options{MaxBodyBytes: limit, BodyBudget: b.budget, IngestTimeout: time.Second, RetryAfter: 3 * time.Second})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	b.addr = srv.Listener.Addr().String()
	return b
}

// open sends the headers of a bank delivery declaring length bytes, signed
// sig, and nothing of its body, and leaves the connection open.
func (b *budgetBundle) open(t *testing.T, length int, sig string) {
	t.Helper()
	conn, err := net.Dial("tcp", b.addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /api/webhooks/bank HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s: %s\r\n\r\n", length, verify.HMACHeader, sig)
	require.NoError(t, err)
}

func waitHeld(t *testing.T, b *receiver.BodyBudget, want int64) {
	t.Helper()
	require.Eventually(t, func() bool { return b.Held() >= want }, 10*time.Second, 5*time.Millisecond,
		"budget held %d, want at least %d", b.Held(), want)
}

// TestDeclaredLengthCostsNoMemoryUntilBytesArrive opens connections that
// each declare a megabyte and send none of it. Buffering for the declared
// length, as bytes.Buffer.Grow(ContentLength) did, would hold 200 MiB; each
// must instead hold one small first chunk, and an honest sender must still
// get 200.
func TestDeclaredLengthCostsNoMemoryUntilBytesArrive(t *testing.T) {
	const conns, declared = 200, 1 << 20
	b := setupBudget(t, 2<<20, 64<<20)
	body := bankEvent("tr_declared", 1)
	before := heapInUse()
	for range conns {
		b.open(t, declared, verify.SignHMAC(bankSecret, body))
	}
	require.Eventually(t, func() bool { return b.budget.Held() == conns*512 }, 10*time.Second, 5*time.Millisecond,
		"every connection reserves its first chunk, and only that: held %d", b.budget.Held())
	grown := heapInUse() - before
	require.Less(t, grown, uint64(32<<20), "heap grew %d bytes for %d connections that sent nothing", grown, conns)

	resp := post(t, "http://"+b.addr+"/api/webhooks/bank", body, http.Header{verify.HMACHeader: {verify.SignHMAC(bankSecret, body)}})
	requireReceived(t, resp)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestBodyBudgetAnswers503WithRetryAfterWhenFull fills the budget with two
// half-sent bodies; a third body cannot be held and gets 503 with
// Retry-After, while the first two, once sent, are accepted, and their
// bytes come back to the budget.
func TestBodyBudgetAnswers503WithRetryAfterWhenFull(t *testing.T) {
	t.Parallel()
	const limit = 4096
	b := setupBudget(t, limit, 2*(limit+1))
	body := func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled","pad":%q}`, id, strings.Repeat("x", 3900))
	}
	first, second, third := body("tr_b1"), body("tr_b2"), body("tr_b3")
	c1, rest1 := rawRequest(t, b.addr, first, 3000)
	c2, rest2 := rawRequest(t, b.addr, second, 3000)
	waitHeld(t, b.budget, 2*int64(len(first)+1))

	c3, _ := rawRequest(t, b.addr, third, 3000)
	resp := readAnswer(t, c3)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "3", resp.Header.Get("Retry-After"))
	require.Contains(t, b.logs.String(), `"outcome":"busy"`)

	rest1()
	rest2()
	require.Equal(t, http.StatusOK, readStatus(t, c1))
	require.Equal(t, http.StatusOK, readStatus(t, c2))
	require.Equal(t, 2, b.ing.count())
	require.Eventually(t, func() bool { return b.budget.Held() == 0 }, 5*time.Second, 5*time.Millisecond,
		"answered requests return their bytes; held %d", b.budget.Held())
}

func TestOversizedBodiesReturnTheirBudget(t *testing.T) {
	t.Parallel()
	b := setupBudget(t, 1024, 1<<20)
	big := bankEvent("tr_big", 1)
	big = append(big, strings.Repeat(" ", 2000)...)
	for _, chunked := range []bool{false, true} {
		req, err := http.NewRequest(http.MethodPost, "http://"+b.addr+"/api/webhooks/bank", strings.NewReader(string(big)))
		require.NoError(t, err)
		if chunked {
			req.ContentLength = -1
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "chunked=%v", chunked)
	}
	require.Eventually(t, func() bool { return b.budget.Held() == 0 }, 5*time.Second, 5*time.Millisecond)
}

// holdingIngester keeps every event's body, as a batch waiting on a slow
// database does, until let go; it fails the request when its context ends.
type holdingIngester struct {
	mu   sync.Mutex
	held []inbox.NewEvent
}

func (h *holdingIngester) Ingest(ctx context.Context, ev inbox.NewEvent) (ingest.Outcome, error) {
	h.mu.Lock()
	h.held = append(h.held, ev)
	h.mu.Unlock()
	<-ctx.Done()
	return 0, ctx.Err()
}

func (h *holdingIngester) letGo() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.held {
		ev.Release()
	}
	h.held = nil
}

// TestABodyStaysInTheBudgetWhileTheIngesterHoldsIt: a request answered 503
// on its ingest timeout may leave its body in a batch that has not yet
// flushed. The budget must count it until the batch lets go, or a stalled
// database would let bodies pile up past it.
func TestABodyStaysInTheBudgetWhileTheIngesterHoldsIt(t *testing.T) {
	t.Parallel()
	v, err := verify.NewHMAC(verify.HMACHeader, []string{bankSecret})
	require.NoError(t, err)
	budget := receiver.NewBodyBudget(1 << 20)
	ing := &holdingIngester{}
	h := receiver.New(slog.New(slog.DiscardHandler), []receiver.Source{{Name: "bank", Verifier: v}}, ing, nil,
		receiver.Options{MaxBodyBytes: 4096, BodyBudget: budget, IngestTimeout: 100 * time.Millisecond, RetryAfter: time.Second})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	body := bankEvent("tr_held", 1)
	resp := post(t, srv.URL+"/api/webhooks/bank", body, http.Header{verify.HMACHeader: {verify.SignHMAC(bankSecret, body)}})
	require.Equal(t, http.StatusServiceUnavailable, resp.status)
	require.Positive(t, budget.Held(), "the answered request's body is still held by the ingester")
	ing.letGo()
	require.Zero(t, budget.Held())
}
