package main

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chart draws throughput and p99 at 80% load for each receiver
// configuration, side by side, as a PNG.
func (r *report) chart(path string) error {
	names := make([]string, len(r.Servers))
	rates, p99s := make(plotter.Values, len(r.Servers)), make(plotter.Values, len(r.Servers))
	for i, s := range r.Servers {
		names[i], rates[i], p99s[i] = s.Name, s.Max.Rate, s.At80.P99
	}
	left, err := barPlot("Maximum sustained events/s", "events/s", names, rates)
	if err != nil {
		return err
	}
	right, err := barPlot("p99 latency at 80% of maximum", "ms", names, p99s)
	if err != nil {
		return err
	}
	const w, h = 10 * vg.Inch, 4 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func barPlot(title, unit string, names []string, values plotter.Values) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	bars, err := plotter.NewBarChart(values, vg.Points(40))
	if err != nil {
		return nil, err
	}
	bars.Color = plotter.DefaultLineStyle.Color
	p.Add(bars)
	top := 0.0
	for _, v := range values {
		top = max(top, v)
	}
	p.Y.Min, p.Y.Max = 0, top*1.15
	p.X.Padding = vg.Points(30)
	p.NominalX(names...)
	return p, nil
}

// workerChart draws, per concurrency, the worker's drain rate beside
// River's no-op rate, as a PNG.
func (r *report) workerChart(path string) error {
	if len(r.Workers) == 0 {
		return nil
	}
	names := make([]string, len(r.Workers))
	worker, noop := make(plotter.Values, len(r.Workers)), make(plotter.Values, len(r.Workers))
	top := 0.0
	for i, w := range r.Workers {
		names[i] = fmt.Sprintf("concurrency %d (%.2f)", w.Concurrency, w.Ratio())
		worker[i], noop[i] = w.JobsPerSec, w.RiverNoOp
		top = max(top, w.JobsPerSec, w.RiverNoOp)
	}
	p := plot.New()
	p.Title.Text = "Jobs/s draining a backlog: worker (example handler, grouped) and River no-op"
	p.Y.Label.Text = "jobs/s"
	width := vg.Points(30)
	for i, s := range []struct {
		name   string
		values plotter.Values
	}{{"River no-op", noop}, {"worker", worker}} {
		bars, err := plotter.NewBarChart(s.values, width)
		if err != nil {
			return err
		}
		bars.Color = plotutil.Color(i)
		bars.Offset = vg.Length(2*i-1) * width / 2
		p.Add(bars)
		p.Legend.Add(s.name, bars)
	}
	p.Legend.Top = true
	p.Y.Min, p.Y.Max = 0, top*1.25
	p.NominalX(names...)
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}
