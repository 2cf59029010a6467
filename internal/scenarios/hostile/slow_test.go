package hostile_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

// slowConn is one slowloris client: it writes its request a byte at a time
// until the server ends the connection, and records how that happened.
type slowConn struct {
	kind    string // "headers" or "body"
	started time.Time
	ended   time.Duration
	answer  answer
}

// dribble writes prefix at once, then rest a byte every gap, while reading
// the answer; it returns when the server has answered or closed.
func dribble(t *testing.T, addr string, prefix, rest []byte, gap time.Duration, sc *slowConn) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		sc.answer = answer{err: err}
		return
	}
	defer conn.Close()
	// A safety net only: the server must end the connection long before.
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	sc.started = time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := conn.Write(prefix); err != nil {
			return
		}
		for _, b := range rest {
			select {
			case <-done:
				return
			case <-time.After(gap):
			}
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	sc.answer = readAnswer(conn)
	sc.ended = time.Since(sc.started)
	_ = conn.Close()
	<-done
}

// TestSlowClientsAreCutOffWhileOthersAreServed opens 50 slowloris
// connections, half dribbling their headers and half their body, a byte
// every 100 ms. Each would take over a minute to finish; the receiver's
// 1 s header timeout and 2 s read timeout must end every one of them, and
// 20 normal deliveries sent meanwhile must all get 200.
func TestSlowClientsAreCutOffWhileOthersAreServed(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	r := c.StartReceiver(t, "RECEIVER_READ_HEADER_TIMEOUT=1s", "RECEIVER_READ_TIMEOUT=2s")

	const perKind, gap = 25, 100 * time.Millisecond
	// Sent whole, both would take 60 s or more at one byte per gap.
	slowHeaders := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: hookline.test\r\nX-Pad: %s\r\n\r\n", bankPath, strings.Repeat("p", 600)))
	slowBody := []byte(fmt.Sprintf(`{"id":"slow","memo":"%s"}`, strings.Repeat(ledgertest.Canary, 30)))
	bodyHeaders := request(http.MethodPost, bankPath, []string{bankSig(slowBody), fmt.Sprintf("Content-Length: %d", len(slowBody))}, nil)

	conns := make([]*slowConn, 0, 2*perKind)
	var wg sync.WaitGroup
	for i := range 2 * perKind {
		sc := &slowConn{kind: "headers"}
		prefix, rest := slowHeaders[:10], slowHeaders[10:]
		if i%2 == 1 {
			sc.kind = "body"
			prefix, rest = slices.Concat(bodyHeaders, slowBody[:1]), slowBody[1:]
		}
		conns = append(conns, sc)
		wg.Add(1)
		go func() { defer wg.Done(); dribble(t, r.Addr, prefix, rest, gap, sc) }()
	}

	// While they are open, honest senders are served. Their latency is not
	// asserted: only that each gets its 200.
	time.Sleep(200 * time.Millisecond)
	client := &http.Client{Timeout: 30 * time.Second}
	ctx := context.Background()
	// All at once, so that every one is served while the slow connections
	// are certainly still open (they last at least 1 s).
	const honest = 20
	statuses, errs := make([]int, honest), make([]error, honest)
	var honestWG sync.WaitGroup
	for i := range honest {
		honestWG.Add(1)
		go func() {
			defer honestWG.Done()
			statuses[i], errs[i] = deliver(ctx, client, r.URL, nextID(fmt.Sprintf("honest%d", i)))
		}()
	}
	honestWG.Wait()
	for i := range honest {
		require.NoError(t, errs[i])
		require.Equal(t, http.StatusOK, statuses[i], "delivery %d while %d slow connections are open", i, 2*perKind)
	}
	wg.Wait()

	for i, sc := range conns {
		// The server ended it, long before the client would have finished.
		require.Less(t, sc.ended, 30*time.Second, "slow %s connection %d was not cut off", sc.kind, i)
		switch sc.kind {
		case "headers":
			// Go's server answers a request whose headers time out with a
			// bare 400 and closes the connection; no handler ever runs.
			if sc.answer.err == nil {
				require.Equal(t, http.StatusBadRequest, sc.answer.status, "slow headers %d: %s", i, sc.answer)
			}
		case "body":
			require.Equal(t, http.StatusRequestTimeout, sc.answer.status, "slow body %d: %s", i, sc.answer)
			require.Contains(t, sc.answer.body, "The request body was not received in time")
		}
	}
	events, jobs := stored(t, c)
	require.Equal(t, honest, events, "only the honest deliveries are stored")
	require.Equal(t, honest, jobs)
	require.Contains(t, r.Out.String(), `"outcome":"read_timeout"`)
}
