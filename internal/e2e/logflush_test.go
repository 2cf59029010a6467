package e2e_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
)

// The receiver writes its request lines in chunks (LOG_FLUSH_INTERVAL):
// a line waits at most the interval, and stopping the receiver writes
// out the lines still buffered.
func TestReceiverWritesRequestLinesWithinTheFlushIntervalAndAllOfThemOnStop(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t)
	r := c.StartReceiver(t, "LOG_FLUSH_INTERVAL=1s")
	base := "http://" + r.Addr

	require.Equal(t, 200, postBank(t, base, bankBody("tr_log_1", "transfer.settled", "acc_log", 1)))
	require.NotContains(t, r.Out.String(), `"event_id":"tr_log_1"`, "the line waits in the buffer")
	require.Eventually(t, func() bool { return strings.Contains(r.Out.String(), `"event_id":"tr_log_1"`) },
		5*time.Second, 20*time.Millisecond, "the line is written within the interval")

	require.Equal(t, 200, postBank(t, base, bankBody("tr_log_2", "transfer.settled", "acc_log", 1)))
	require.NoError(t, r.Stop(t, syscall.SIGTERM, 20*time.Second))
	require.Contains(t, r.Out.String(), `"event_id":"tr_log_2"`, "stopping writes out the buffered lines")
}
