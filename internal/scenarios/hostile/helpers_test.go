package hostile_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
	"github.com/hookline/hookline/internal/verify"
)

// answer is what came back on a raw connection: a parsed response, or the
// error that ended the connection without one.
type answer struct {
	status int
	header http.Header
	body   string
	err    error
}

func (a answer) String() string {
	if a.err != nil {
		return "no answer: " + a.err.Error()
	}
	return fmt.Sprintf("%d %s", a.status, a.body)
}

// roundTrip writes raw on a new connection to addr, from a goroutine so a
// server that answers before reading everything (413, 431) is not blocked
// on, then reads one response.
func roundTrip(t *testing.T, addr string, raw []byte) answer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	go func() { _, _ = conn.Write(raw) }() // errors show up as a missing answer
	return readAnswer(conn)
}

func readAnswer(conn net.Conn) answer {
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return answer{status: resp.StatusCode, header: resp.Header, body: strings.TrimSpace(string(b))}
}

// request renders an HTTP/1.1 request by hand. headers are written as
// given, in order; Host and Connection: close are added.
func request(method, target string, headers []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: hookline.test\r\nConnection: close\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// post renders a POST with a Content-Length.
func post(target string, headers []string, body []byte) []byte {
	return request(http.MethodPost, target, append(headers, fmt.Sprintf("Content-Length: %d", len(body))), body)
}

var idSeq atomic.Int64

// nextID returns an event id unique within the test binary.
func nextID(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano(), idSeq.Add(1))
}

// bankBody is a bank event carrying the body canary, which no log may hold.
func bankBody(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"transfer.settled","account":"acc_h","amount_cents":1,"memo":%q}`, id, ledgertest.Canary)
}

// bankSig is the X-Hmac-Signature header line for body.
func bankSig(body []byte) string {
	return verify.HMACHeader + ": " + verify.SignHMAC(clustertest.BankSecret, body)
}

// stripeSig is the Stripe-Signature header line for body, signed now.
func stripeSig(body []byte) string {
	return verify.StripeHeader + ": " + verify.SignStripe(clustertest.StripeSecret, body, time.Now())
}

// stored returns the number of inbox rows and of process_event jobs.
func stored(t *testing.T, c *clustertest.Cluster) (events, jobs int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM inbox_events`).Scan(&events))
	require.NoError(t, c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'process_event'`).Scan(&jobs))
	return events, jobs
}

// deliver sends one correctly signed bank event with Go's client and
// returns the status.
func deliver(ctx context.Context, client *http.Client, base, id string) (int, error) {
	body := bankBody(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/webhooks/bank", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set(verify.HMACHeader, verify.SignHMAC(clustertest.BankSecret, body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
