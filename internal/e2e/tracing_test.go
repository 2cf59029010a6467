package e2e_test

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
)

// exportedSpan is a span as the console exporter prints it, one JSON
// object per line.
type exportedSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
}

func (s exportedSpan) attr(key string) any {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.Value
		}
	}
	return nil
}

// spansIn returns the spans in a process's output, by name.
func spansIn(t *testing.T, out string) map[string][]exportedSpan {
	t.Helper()
	spans := map[string][]exportedSpan{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, `"SpanContext"`) {
			continue // a log line
		}
		var s exportedSpan
		require.NoError(t, json.Unmarshal([]byte(line), &s), line)
		spans[s.Name] = append(spans[s.Name], s)
	}
	return spans
}

func TestTheRealBinariesTraceOneEventAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t)
	c.Forbid("acc_traced") // body text
	env := []string{"OTEL_TRACES_EXPORTER=console", "OTEL_BSP_SCHEDULE_DELAY=100"}
	r := c.StartReceiver(t, env...)
	w := c.StartWorker(t, env...)

	require.Equal(t, 200, postBank(t, r.URL, bankBody("tr_traced", "transfer.settled", "acc_traced", 100)))
	require.Equal(t, map[string]int{"completed": 1}, c.WaitDrained(t, 30*time.Second))
	// A clean stop flushes each process's last spans.
	require.NoError(t, r.Stop(t, syscall.SIGTERM, 30*time.Second))
	require.NoError(t, w.Stop(t, syscall.SIGTERM, 30*time.Second))

	rs, ws := spansIn(t, r.Out.String()), spansIn(t, w.Out.String())
	require.Len(t, rs["hookline.receive"], 1)
	require.Len(t, rs["hookline.commit"], 1)
	require.Len(t, ws["river.work/process_event"], 1)
	require.Len(t, ws["hookline.handle"], 1)
	recv, commit := rs["hookline.receive"][0], rs["hookline.commit"][0]
	work, handle := ws["river.work/process_event"][0], ws["hookline.handle"][0]

	trace := recv.SpanContext.TraceID
	require.Equal(t, "bank", recv.attr("hookline.source"))
	require.Equal(t, "tr_traced", recv.attr("hookline.event_id"))
	require.Equal(t, recv.SpanContext.SpanID, commit.Parent.SpanID)
	// Through the job's metadata, from one process to the other.
	require.Equal(t, trace, work.SpanContext.TraceID, "the worker started another trace")
	require.Equal(t, commit.SpanContext.SpanID, work.Parent.SpanID)
	require.Equal(t, work.SpanContext.SpanID, handle.Parent.SpanID)
	require.Equal(t, "tr_traced", handle.attr("hookline.event_id"))
	require.Equal(t, "transfer.settled", handle.attr("hookline.event_type"))

	// The request's log line names the trace.
	require.Contains(t, r.Out.String(), `"trace_id":"`+trace+`"`)
	require.Contains(t, w.Out.String(), `"msg":"tracing on"`)
}
