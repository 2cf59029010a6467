package metrics_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/receiver"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The types plug into the interfaces of the packages they observe.
var (
	_ receiver.Recorder = (*metrics.Receiver)(nil)
	_ ingest.Observer   = (*metrics.Ingest)(nil)
)

var discard = slog.New(slog.DiscardHandler)

// gather collects reg once: each gather runs the collectors again.
func gather(t *testing.T, reg prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	return mfs
}

// family returns the metric family called name, or nil.
func family(mfs []*dto.MetricFamily, name string) *dto.MetricFamily {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// sample returns the metric of family name whose labels include labels.
func sample(t *testing.T, mfs []*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mf := family(mfs, name)
	require.NotNil(t, mf, "no metric family %s", name)
next:
	for _, m := range mf.GetMetric() {
		got := make(map[string]string, len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
