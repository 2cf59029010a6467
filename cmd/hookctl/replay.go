package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/ops"
)

func newReplayCmd(getenv func(string) string) *cobra.Command {
	var (
		asJSON, yes, summary bool
		since                string
		sel                  ops.ReplaySelector
		opts                 ops.ReplayOpts
	)
	cmd := &cobra.Command{
		Use:   "replay (<source> <event-id> | --source S --since T [--type X] --yes [--summary])",
		Short: "Apply stored events again, deliberately (audited)",
		Long: `Re-enqueue stored events so that a worker applies them AGAIN.

Replay is the one deliberate path that may apply an event's effect a second
time. Everywhere else Hookline guarantees the opposite: a duplicate delivery
is dropped, and a worker completes a job for an event already processed
without running its handler. A replay job carries Replay=true, which makes
the worker run the handler even though the event was processed: a payment
credited once is credited again. Use it after fixing a handler bug, or to
rebuild state, knowing what the handler does twice.

Each replayed event gets a new River job and a replay_audit row (who, when,
why, which job), written in one transaction: there is no replay without its
audit row, and no audit row without its job. "hookctl events get" shows
them.

An event is skipped, and said so, when its payload was pruned (the handler
would see an empty body) or when it still has a job waiting to run
(available, running, retryable, scheduled or pending): that job and the
replay would both apply it. Wait for the job to finish. A dead letter
(discarded) is not waiting; "hookctl retry --discarded" runs it again
without the Replay flag, which is what an unprocessed event usually needs.

The bulk form replays every event of a source received since a time (and
of a type, with --type), all in one transaction: Ctrl-C before it ends
replays nothing. It asks for confirmation on a terminal, and otherwise
requires --yes. On a terminal it shows its progress on one line, redrawn
(on stderr with --json); piped, it prints only its result: a line of counts
then a row per event, or the counts alone with --summary. Reads
DATABASE_URL.`,
		Example: `  hookctl replay stripe evt_1NqX --reason "INC-142: handler fixed"
  hookctl replay --source bank --since 2026-03-01T00:00:00Z --type transfer.settled --reason "rebuild ledger" --yes
  hookctl replay --source stripe --since 2h --reason "INC-150" --yes --summary`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bulk := sel.Source != "" || since != "" || sel.Type != ""
			switch {
			case len(args) == 2 && bulk:
				return errors.New("give either <source> <event-id>, or --source and --since, not both")
			case len(args) == 2:
			case len(args) == 1:
				return errors.New("give <source> <event-id>, or --source and --since for a bulk replay")
			case sel.Source == "" || since == "":
				return errors.New("a bulk replay needs both --source and --since (or give <source> <event-id>)")
			}
			if opts.By == "" {
				opts.By = currentUser(getenv)
			}
			if opts.By == "" {
				return errors.New("cannot tell who you are: pass --by")
			}
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()
			out := cmd.OutOrStdout()

			if len(args) == 2 {
				if summary {
					return errors.New("--summary is for a bulk replay (--source and --since)")
				}
				r, err := client.ReplayEvent(cmd.Context(), args[0], args[1], opts)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(out, r)
				}
				fmt.Fprintf(out, "replayed %s/%s: job %d will apply it again (audit row %d, by %s)\n", r.Source, r.EventID, r.JobID, r.AuditID, opts.By)
				if r.NewerApplied != "" {
					fmt.Fprintln(out, olderNote(r))
				}
				return nil
			}

			t, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			sel.Since = t
			if !yes {
				if err := confirmBulkReplay(cmd, client, sel); err != nil {
					return err
				}
			}
			progressOut := out
			if asJSON {
				progressOut = cmd.ErrOrStderr()
			}
			var progress *replayPrinter
			if isTerminal(progressOut) {
				progress = newReplayPrinter(progressOut, time.Now())
				opts.Progress = progress.show
			}
			res, err := client.ReplayMatching(cmd.Context(), sel, opts)
			progress.finish()
			if err != nil {
				return err
			}
			switch {
			case asJSON && summary:
				return writeJSON(out, summarize(res))
			case asJSON:
				return writeJSON(out, res)
			case summary:
				return printReplaySummary(out, summarize(res), sel)
			}
			return printReplay(out, res, sel)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	f.StringVar(&sel.Source, "source", "", "bulk: replay events of this source")
	f.StringVar(&since, "since", "", "bulk: received since a duration before now (1h, 2d) or an RFC 3339 time")
	f.StringVar(&sel.Type, "type", "", "bulk: only events of this type")
	f.BoolVar(&yes, "yes", false, "bulk: do not ask for confirmation")
	f.BoolVar(&summary, "summary", false, "bulk: print the counts only, not a row per event")
	f.StringVar(&opts.By, "by", "", "who replays, for the audit (default: $USER, or the OS user)")
	f.StringVar(&opts.Reason, "reason", "", "why, for the audit")
	return cmd
}

// confirmBulkReplay asks on a terminal whether to go on, and refuses when
// there is no terminal to ask on.
func confirmBulkReplay(cmd *cobra.Command, client *ops.Client, sel ops.ReplaySelector) error {
	p, err := client.PreviewReplay(cmd.Context(), sel)
	if err != nil {
		return err
	}
	if !isTerminal(cmd.InOrStdin()) {
		return fmt.Errorf("refusing to replay %d events (%s) without confirmation: pass --yes", p.Replayable, sel)
	}
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "%d events match (%s); %d can be replayed now, and their effects will be applied AGAIN.\nReplay them? [y/N] ", p.Matching, sel, p.Replayable)
	// Read in the background: Ctrl-C cancels the context (main catches
	// the signal), and must end the prompt too.
	type line struct {
		text string
		err  error
	}
	read := make(chan line, 1)
	go func() {
		text, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		read <- line{text, err}
	}()
	var answer string
	select {
	case <-cmd.Context().Done():
		fmt.Fprintln(w)
		return fmt.Errorf("replay cancelled: nothing was enqueued: %w", cmd.Context().Err())
	case l := <-read:
		if l.err != nil && !errors.Is(l.err, io.EOF) {
			return fmt.Errorf("read confirmation: %w", l.err)
		}
		answer = l.text
	}
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return errors.New("replay cancelled: nothing was enqueued")
	}
	return nil
}

func printReplay(out io.Writer, res ops.ReplayResult, sel ops.ReplaySelector) error {
	fmt.Fprintf(out, "replayed %d events of %s; skipped %d\n", len(res.Replayed), sel, len(res.Skipped))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(res.Replayed) > 0 {
		fmt.Fprintln(tw, "REPLAYED\tTYPE\tJOB\tAUDIT")
		for _, r := range res.Replayed {
			fmt.Fprintf(tw, "%s/%s\t%s\t%d\t%d\n", r.Source, oneLine(r.EventID, 60), oneLine(r.Type, 40), r.JobID, r.AuditID)
		}
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintln(tw, "SKIPPED\tREASON\t\t")
		for _, s := range res.Skipped {
			fmt.Fprintf(tw, "%s/%s\t%s\t\t\n", s.Source, oneLine(s.EventID, 60), s.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range res.Replayed {
		if r.NewerApplied != "" {
			fmt.Fprintln(out, olderNote(r))
		}
	}
	return nil
}

// olderNote says that a replayed event is older than the newest applied
// for its object, which an ordered handler would otherwise skip as stale.
func olderNote(r ops.Replayed) string {
	return fmt.Sprintf("note: %s/%s is older than %s, the newest event applied for its object %s; its ordered handler runs it anyway, as asked, and may overwrite the newer state",
		r.Source, oneLine(r.EventID, 60), oneLine(r.NewerApplied, 60), oneLine(r.Object, 60))
}

// replaySummary is what --summary prints: counts, no event.
type replaySummary struct {
	Replayed        int            `json:"replayed"`
	Skipped         int            `json:"skipped"`
	SkippedByReason map[string]int `json:"skipped_by_reason"`
}

func summarize(res ops.ReplayResult) replaySummary {
	sum := replaySummary{Replayed: len(res.Replayed), Skipped: len(res.Skipped), SkippedByReason: map[string]int{}}
	for _, s := range res.Skipped {
		sum.SkippedByReason[s.Reason]++
	}
	return sum
}

func printReplaySummary(out io.Writer, sum replaySummary, sel ops.ReplaySelector) error {
	fmt.Fprintf(out, "replayed %d events of %s; skipped %d\n", sum.Replayed, sel, sum.Skipped)
	for _, reason := range slices.Sorted(maps.Keys(sum.SkippedByReason)) {
		fmt.Fprintf(out, "  skipped %d: %s\n", sum.SkippedByReason[reason], reason)
	}
	return nil
}

// replayPrinter redraws a bulk replay's progress on one terminal line.
type replayPrinter struct {
	line  statusLine
	start time.Time
}

func newReplayPrinter(out io.Writer, start time.Time) *replayPrinter {
	return &replayPrinter{line: statusLine{w: out}, start: start}
}

func (p *replayPrinter) show(pr ops.ReplayProgress) {
	p.line.draw(fmt.Sprintf("replaying: %d of %d events checked (%d%%), %d replayed, %d skipped, %s",
		pr.Done, pr.Total, percent(pr.Done, pr.Total), pr.Replayed, pr.Skipped, fmtAge(time.Since(p.start))))
}

// finish erases the line, so that the result starts on a clean one. A nil
// printer, for output that is not a terminal, does nothing.
func (p *replayPrinter) finish() {
	if p != nil {
		p.line.erase()
	}
}

func percent(done, total int) int {
	if total == 0 {
		return 100
	}
	return done * 100 / total
}
