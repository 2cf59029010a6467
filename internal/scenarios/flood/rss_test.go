package flood_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

// sample is one reading, every second, of each watched process's RSS and of
// the ledger's counters.
type sample struct {
	at    time.Duration // since the sampler started
	rss   []int64       // bytes, in the order of sampler.names
	acked int           // 2xx answers so far
}

// sampler reads the RSS of procs every interval until stopped. A process
// that cannot be read (it exited) is an error for the caller to report: a
// flood must not kill anything.
type sampler struct {
	names []string
	procs []*clustertest.Proc
	l     *ledgertest.Ledger

	mu      sync.Mutex
	samples []sample
	errs    []error
	stop    context.CancelFunc
	done    chan struct{}
}

func startSampler(l *ledgertest.Ledger, interval time.Duration, names []string, procs ...*clustertest.Proc) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{names: names, procs: procs, l: l, stop: cancel, done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			s.read(time.Since(start))
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) read(at time.Duration) {
	smp := sample{at: at, rss: make([]int64, len(s.procs)), acked: s.l.Progress().Answered2xx}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.procs {
		rss, err := p.RSS()
		if err != nil {
			if len(s.errs) < 5 {
				s.errs = append(s.errs, err)
			}
			return
		}
		smp.rss[i] = rss
	}
	s.samples = append(s.samples, smp)
}

// Stop takes one last reading and returns every reading and the errors met.
func (s *sampler) Stop() ([]sample, []error) {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.errs
}

// rssTrend sums up one process's RSS over a run. The first third is the
// warm-up (heap and connection pools growing to the load) and is left out
// of the trend.
type rssTrend struct {
	PeakMB     float64 `json:"peak_mb"`
	MiddleMB   float64 `json:"middle_third_mean_mb"`
	LastMB     float64 `json:"last_third_mean_mb"`
	SlopeMBMin float64 `json:"slope_mb_per_min"`
}

func trend(samples []sample, proc int) rssTrend {
	var tr rssTrend
	for _, s := range samples {
		tr.PeakMB = max(tr.PeakMB, mb(s.rss[proc]))
	}
	n := len(samples)
	if n < 3 {
		return tr
	}
	mean := func(ss []sample) float64 {
		var sum float64
		for _, s := range ss {
			sum += mb(s.rss[proc])
		}
		return sum / float64(len(ss))
	}
	tr.MiddleMB = round1(mean(samples[n/3 : 2*n/3]))
	tr.LastMB = round1(mean(samples[2*n/3:]))
	xs := make([]float64, 0, n)
	ys := make([]float64, 0, n)
	for _, s := range samples[n/3:] {
		xs = append(xs, s.at.Minutes())
		ys = append(ys, mb(s.rss[proc]))
	}
	tr.SlopeMBMin = math.Round(slope(xs, ys)*100) / 100
	tr.PeakMB = round1(tr.PeakMB)
	return tr
}

// slope is the least-squares slope of ys over xs; 0 if xs do not vary.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// point is one point of the series a report carries: the end of a bucket
// of readings, each process's mean RSS over it, and the 2xx rate.
type point struct {
	T       float64   `json:"t_s"`
	RSSMB   []float64 `json:"rss_mb"`
	AckedPS float64   `json:"acked_per_s"`
}

// downsample cuts samples into at most n consecutive buckets of equal size
// and returns one point per bucket, so a report of a long soak stays short.
func downsample(samples []sample, n int) []point {
	if len(samples) < 2 {
		return nil
	}
	// The first reading is the baseline for the first bucket's rate.
	prev := samples[0]
	rest := samples[1:]
	size := (len(rest) + n - 1) / n
	var out []point
	for i := 0; i < len(rest); i += size {
		b := rest[i:min(i+size, len(rest))]
		last := b[len(b)-1]
		p := point{T: round1(last.at.Seconds()), RSSMB: make([]float64, len(last.rss))}
		for proc := range last.rss {
			var sum float64
			for _, s := range b {
				sum += mb(s.rss[proc])
			}
			p.RSSMB[proc] = round1(sum / float64(len(b)))
		}
		if dt := (last.at - prev.at).Seconds(); dt > 0 {
			p.AckedPS = math.Round(float64(last.acked-prev.acked) / dt)
		}
		out = append(out, p)
		prev = last
	}
	return out
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// The trend and series code decides whether a soak passes, so it is tested
// on its own, on made-up readings.
func TestRSSTrendAndSeries(t *testing.T) {
	t.Parallel()
	var flat, leak []sample
	for i := range 180 {
		at := time.Duration(i) * time.Second
		// Warm-up to 60 MB in the first 20 s, then flat with noise.
		f := int64(60 << 20)
		if i < 20 {
			f = int64(20+2*i) << 20
		}
		f += int64(i%3) << 20
		flat = append(flat, sample{at: at, rss: []int64{f}, acked: 100 * i})
		leak = append(leak, sample{at: at, rss: []int64{int64(60+i/3) << 20}, acked: 100 * i})
	}
	ft := trend(flat, 0)
	if ft.PeakMB != 62 || math.Abs(ft.SlopeMBMin) > 0.5 || math.Abs(ft.LastMB-ft.MiddleMB) > 1 {
		t.Errorf("flat series: %+v", ft)
	}
	lt := trend(leak, 0)
	if math.Abs(lt.SlopeMBMin-20) > 0.5 || lt.LastMB-lt.MiddleMB < 15 {
		t.Errorf("leaking series (20 MB/min): %+v", lt)
	}
	pts := downsample(flat, 60)
	if len(pts) != 60 {
		t.Fatalf("downsample(180 readings, 60) gave %d points", len(pts))
	}
	for _, p := range pts {
		if p.AckedPS != 100 {
			t.Fatalf("point %+v: want 100 acked/s", p)
		}
	}
	if last := pts[len(pts)-1]; last.T != 179 {
		t.Errorf("last point at %vs, want 179s", last.T)
	}
	if got := len(downsample(flat[:7], 60)); got != 6 {
		t.Errorf("downsample(7 readings, 60) gave %d points, want 6", got)
	}
}
