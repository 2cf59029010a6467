package receiver_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/httpserver"
	"github.com/hookline/hookline/internal/verify"
)

// rawRequest opens a connection to the server at addr and writes a bank
// delivery's headers and the first part of its body, returning the
// connection and a function that writes the rest.
func rawRequest(t *testing.T, addr string, body []byte, sent int) (net.Conn, func()) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /api/webhooks/bank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s: %s\r\nContent-Length: %d\r\n\r\n%s",
		verify.HMACHeader, verify.SignHMAC(bankSecret, body), len(body), body[:sent])
	require.NoError(t, err)
	return conn, func() {
		_, err := conn.Write(body[sent:])
		require.NoError(t, err)
	}
}

// readAnswer reads the response on conn; the server must send one.
func readAnswer(t *testing.T, conn net.Conn) *http.Response {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the server closed the connection without an answer")
	resp.Body.Close()
	return resp
}

func readStatus(t *testing.T, conn net.Conn) int { return readAnswer(t, conn).StatusCode }

// TestSlowBodyGets408WhenWriteTimeoutEqualsReadTimeout stalls a body past
// RECEIVER_READ_TIMEOUT with the defaults' shape (read and write timeouts
// equal). Go's write deadline runs from the end of the headers, so without
// a fresh deadline for the answer the 408 could not be written and the
// sender would see the connection drop.
func TestSlowBodyGets408WhenWriteTimeoutEqualsReadTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{timeouts: &httpserver.Timeouts{ReadHeader: time.Second, Read: time.Second, Write: time.Second}})
	conn, _ := rawRequest(t, b.url, bankEvent("tr_stalled", 1), 10)

	require.Equal(t, http.StatusRequestTimeout, readStatus(t, conn))
	events, jobs := b.counts(t)
	require.Zero(t, events+jobs)
}

// TestAnswerOutlivesTheWriteTimeoutWhenTheCommitIsSlow sends a body in two
// parts and holds the event's inbox key in another transaction, so that the
// request's commit ends after the server's WriteTimeout. The event is
// committed, so its 200 must arrive: a lost answer would make the provider
// retry an event that is already stored.
func TestAnswerOutlivesTheWriteTimeoutWhenTheCommitIsSlow(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{timeouts: &httpserver.Timeouts{ReadHeader: 2 * time.Second, Read: 2 * time.Second, Write: 2 * time.Second}})
	ctx := context.Background()
	holder, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer holder.Rollback(ctx) //nolint:errcheck
	_, err = holder.Exec(ctx, `INSERT INTO inbox_events (source, event_id, payload) VALUES ('bank', 'tr_slow_commit', '')`)
	require.NoError(t, err)

	start := time.Now()
	conn, rest := rawRequest(t, b.url, bankEvent("tr_slow_commit", 5), 10)
	rest()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting == 1
	}, 10*time.Second, 20*time.Millisecond, "the request's insert should wait on the held key")
	// Past the write deadline the headers set, before the commit can end.
	time.Sleep(time.Until(start.Add(2500 * time.Millisecond)))
	require.NoError(t, holder.Rollback(ctx))

	require.Equal(t, http.StatusOK, readStatus(t, conn))
	events, jobs := b.counts(t)
	require.Equal(t, [2]int{1, 1}, [2]int{events, jobs})
}
