package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/throttle"
)

func newDrainCmd(getenv func(string) string) *cobra.Command {
	var (
		asJSON            bool
		timeout, interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "drain",
		Short: "Wait until the events queue has no job left to run",
		Long: `Wait until no job of the "events" queue is available, running, retryable,
scheduled or pending, polling every --interval. Discarded jobs (the dead
letters) do not count: see "hookctl retry --discarded".

Draining does not stop anything: the workers keep working and the receivers
keep enqueueing, so a steady stream of events can keep the queue from ever
draining, and a retryable job waits out its backoff (hours or days after
many attempts). Use --timeout. A paused queue cannot drain; drain says so.

On a terminal it redraws one line: the jobs remaining, the rate at which
they fall (jobs/s) and an estimated time left. Its running count is River's,
which includes the jobs fetched by a worker that wait at its throttle gate
(hookctl throttle); the line says how many of them wait. Otherwise it prints a line
whenever the count changes (and every 30 s). With --json, progress goes to
stderr and a summary to stdout.

Exits 0 once drained, and non-zero when jobs remain at the timeout or on
Ctrl-C. Reads DATABASE_URL.`,
		Example: `  hookctl drain --timeout 10m
  hookctl drain --timeout 30s --interval 500ms --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout < 0 || interval <= 0 {
				return fmt.Errorf("--timeout must be 0 (none) or positive and --interval positive; got %s and %s", timeout, interval)
			}
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()

			out := cmd.OutOrStdout()
			progressOut := out
			if asJSON {
				progressOut = cmd.ErrOrStderr()
			}
			p := newDrainPrinter(progressOut, isTerminal(progressOut))
			res, drainErr := client.Drain(cmd.Context(), ops.DrainOpts{Interval: interval, Timeout: timeout, Progress: p.show})
			p.finish()
			if asJSON {
				if err := writeJSON(out, res); err != nil {
					return err
				}
			} else if drainErr == nil {
				fmt.Fprintf(out, "queue %s drained: %d jobs in %s\n", res.Queue, res.Initial, fmtAge(res.Elapsed))
			}
			return drainErr
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print a JSON summary for scripts")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (0: wait until drained or interrupted)")
	f.DurationVar(&interval, "interval", time.Second, "time between polls")
	return cmd
}

// drainPrinter shows a drain's progress: one line redrawn in place on a
// terminal, or a line per change elsewhere.
type drainPrinter struct {
	out         io.Writer
	terminal    bool
	line        statusLine
	last        int64
	lastPrinted time.Time
	warnedPause bool
}

func newDrainPrinter(out io.Writer, terminal bool) *drainPrinter {
	return &drainPrinter{out: out, terminal: terminal, line: statusLine{w: out}, last: -1}
}

func (p *drainPrinter) show(pr ops.DrainProgress) {
	if pr.Paused && !p.warnedPause {
		p.line.erase()
		fmt.Fprintln(p.out, "warning: the queue is paused, so it cannot drain: run `hookctl resume`")
		p.warnedPause = true
	}
	rate, eta := "-", "-"
	if pr.Rate > 0 {
		rate = fmt.Sprintf("%.1f jobs/s", pr.Rate)
	}
	if pr.ETA != nil {
		eta = pr.ETA.String()
	}
	b := pr.Backlog
	line := fmt.Sprintf("%s  remaining %d (available %d, %s, retryable %d, scheduled %d, pending %d)  rate %s  eta %s",
		fmtAge(pr.Elapsed.Round(time.Second)), pr.Remaining, b.Available, describeRunning(b.Running, pr.Running),
		b.Retryable, b.Scheduled, b.Pending, rate, eta)
	if p.terminal {
		p.line.draw(line)
		return
	}
	if pr.Remaining != p.last || time.Since(p.lastPrinted) >= 30*time.Second {
		fmt.Fprintln(p.out, line)
		p.last, p.lastPrinted = pr.Remaining, time.Now()
	}
}

// finish ends the redrawn line, leaving the last count on the screen.
func (p *drainPrinter) finish() {
	if p.line.drawn {
		fmt.Fprintln(p.out)
		p.line.drawn = false
	}
}

// describeRunning names River's running count, and the jobs in it that
// only wait at the throttle gate: under "hookctl throttle 2", 48 running
// jobs may be 2 at work and 46 waiting, not 48 at work.
func describeRunning(running int64, split throttle.Running) string {
	if split.WaitingAtGate == 0 {
		return fmt.Sprintf("running %d", running)
	}
	return fmt.Sprintf("running %d (%d of them waiting at the throttle gate)", running, split.WaitingAtGate)
}
