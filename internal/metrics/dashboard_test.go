package metrics_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/metrics"
)

// describingRegistry remembers the names of what is registered with it.
type describingRegistry struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r describingRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.names[fqName.FindStringSubmatch(d.String())[1]] = true
	}
	return nil
}

func (r describingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (describingRegistry) Unregister(prometheus.Collector) bool { return false }

func TestDashboardQueriesOnlyMetricsThatExist(t *testing.T) {
	t.Parallel()
	reg := describingRegistry{names: map[string]bool{}}
	metrics.NewReceiver(reg)
	metrics.NewIngest(reg)
	metrics.NewWorker(reg)
	reg.MustRegister(metrics.NewGate(gateCounts{}))
	metrics.NewCatchup(reg)
	reg.MustRegister(metrics.NewQueue(failingQuerier{}, "events", time.Second, discard))

	dashboard, err := os.ReadFile("../../deploy/grafana/hookline.json")
	require.NoError(t, err)
	used := regexp.MustCompile(`hookline_[a-z_]+`).FindAllString(string(dashboard), -1)
	require.NotEmpty(t, used)
	for _, name := range used {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && reg.names[base] {
				name = base
			}
		}
		require.True(t, reg.names[name], "the dashboard queries %s, which no collector defines", name)
	}
}
