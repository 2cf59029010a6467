package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/sources"
)

func newBackfillReplayKeysCmd(getenv func(string) string) *cobra.Command {
	var (
		asJSON bool
		source string
		opts   = ops.BackfillOpts{BatchSize: ops.DefaultBackfillBatch}
	)
	cmd := &cobra.Command{
		Use:   "backfill-replay-keys [--source NAME] [--batch N] [--rekey] [--dry-run] [--json]",
		Short: "Give events stored before a source's replay guard their replay keys",
		Long: `Fill the replay key of the stored events of every source with a replay guard
(or of --source alone), so that the guard covers them too.

A source whose signature does not cover the event id (GitHub, Shopify, HMAC
with the id in a header) has a replay guard: the receiver stores a digest of
each body (guard body), or of its type and body (body_and_type), and refuses
a body the source has stored before under any id. Events stored before the
guard existed, or while the source had replay_guard off, have no key: a
delivery captured then could be sent once more under a new id and be
stored, and applied, again. This command gives them their keys.

The sources and their guards are read as the receiver reads them: the file
named by HOOKLINE_SOURCES, or else STRIPE_WEBHOOK_SECRET and
BANK_WEBHOOK_SECRET (whose secrets must resolve, as for "hookctl sources").
Sources with replay_guard off are skipped.

Keys are computed by Postgres, byte for byte as the receiver computes them;
payloads never leave the database. Pruned events are skipped: their payload
is empty. The inbox holds one event per source and key, so when stored
events share a body, the oldest gets the key and the others are reported,
with the event that holds it. Such events may be captured deliveries sent
again under a new id and applied again before the guard existed (or a
provider that sent one body twice): check what their handlers did. They
stay without a key, and every run reports them again.

After changing a source's guard between body and body_and_type, pass
--rekey: the keys made under the old guard are then replaced too. It reads
and hashes every unpruned payload of the source, where a plain run hashes
only the events without a key.

Events are keyed in id order, --batch at a time, each batch in its own
transaction, so the command can run while receivers store events. Run it
once every receiver has the guard: an event a receiver stores without a key
meanwhile may be missed (run it again). A second run changes nothing. The
SQL is internal/ops.BackfillReplayKeys. Reads DATABASE_URL.`,
		Example: `  hookctl backfill-replay-keys --dry-run
  hookctl backfill-replay-keys
  hookctl backfill-replay-keys --source shopify --rekey --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.BatchSize <= 0 {
				return fmt.Errorf("--batch must be positive, not %d", opts.BatchSize)
			}
			srcs, _, err := loadSources(getenv)
			if err != nil {
				return err
			}
			guarded, unguarded, err := guardedSources(srcs, source)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !asJSON {
				for _, name := range unguarded {
					fmt.Fprintf(out, "%s: replay_guard off, skipped\n", name)
				}
			}
			if len(guarded) == 0 {
				if asJSON {
					return writeJSON(out, []ops.BackfillResult{})
				}
				fmt.Fprintln(out, "no source has a replay guard: nothing to backfill")
				return nil
			}
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()

			progress := cmd.ErrOrStderr()
			results := []ops.BackfillResult{}
			for _, s := range guarded {
				o := opts
				o.Source, o.WithType = s.Name, s.ReplayGuard == receiver.GuardBodyAndType
				line := statusLine{w: progress}
				if isTerminal(progress) {
					o.Progress = func(r ops.BackfillResult) {
						line.draw(fmt.Sprintf("%s: keyed %d, sharing a body %d", r.Source, r.Keyed, r.SharedBody))
					}
				}
				res, err := client.BackfillReplayKeys(cmd.Context(), o)
				line.erase()
				if err != nil {
					return err
				}
				results = append(results, res)
				if !asJSON {
					// Each source as it is done: if a later one fails,
					// what was keyed is still told.
					printBackfill(out, res)
				}
			}
			if asJSON {
				return writeJSON(out, results)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	f.StringVar(&source, "source", "", "backfill this source only (default: every source with a replay guard)")
	f.IntVar(&opts.BatchSize, "batch", ops.DefaultBackfillBatch, "events keyed per transaction")
	f.BoolVar(&opts.Rekey, "rekey", false, "also replace keys made under the source's other guard (after changing body <-> body_and_type)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "count what would change, and change nothing")
	return cmd
}

// loadSources builds the sources as the receiver and "hookctl sources" do,
// with the Stripe timestamp tolerance from STRIPE_TIMESTAMP_TOLERANCE.
func loadSources(getenv func(string) string) ([]receiver.Source, []sources.Summary, error) {
	tol := sources.DefaultTolerance
	if v := getenv("STRIPE_TIMESTAMP_TOLERANCE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, nil, fmt.Errorf("STRIPE_TIMESTAMP_TOLERANCE=%q: %w", v, err)
		}
		tol = d
	}
	return sources.Load(getenv, getenv("HOOKLINE_SOURCES"), tol)
}

// guardedSources returns the sources with a replay guard and the names of
// the others, or only the one named, which must have a guard.
func guardedSources(srcs []receiver.Source, name string) (guarded []receiver.Source, unguarded []string, err error) {
	names := make([]string, 0, len(srcs))
	for _, s := range srcs {
		names = append(names, s.Name)
		if name != "" && s.Name != name {
			continue
		}
		if name != "" && s.ReplayGuard == receiver.GuardOff {
			return nil, nil, fmt.Errorf("source %q has no replay guard (replay_guard off): its events are keyed on their id alone, so there is nothing to backfill", name)
		}
		if s.ReplayGuard == receiver.GuardOff {
			unguarded = append(unguarded, s.Name)
		} else {
			guarded = append(guarded, s)
		}
	}
	if name != "" && len(guarded) == 0 {
		return nil, nil, fmt.Errorf("source %q is not configured; the sources are %s", name, strings.Join(names, ", "))
	}
	return guarded, unguarded, nil
}

// printBackfill writes one source's summary: what was keyed, and the
// events sharing a body, which an operator must look at.
func printBackfill(w io.Writer, r ops.BackfillResult) {
	would := func(done, todo string) string {
		if r.DryRun {
			return todo
		}
		return done
	}
	prefix := ""
	if r.DryRun {
		prefix = "dry run, nothing changed: "
	}
	line := fmt.Sprintf("%s%s (replay_guard %s): %s %d events", prefix, r.Source, r.Guard, would("keyed", "would key"), r.Keyed)
	if r.Rekeyed > 0 {
		line += fmt.Sprintf(" (%d of them had a key of another guard)", r.Rekeyed)
	}
	line += fmt.Sprintf("; %d pruned events skipped", r.SkippedPruned)
	fmt.Fprintln(w, line)
	if r.SharedBody == 0 {
		return
	}
	what := "body"
	if r.Guard == "body_and_type" {
		what = "type and body"
	}
	fmt.Fprintf(w, "warning: %s: %d events share their %s with another event, which holds the key, and %s without one.\n",
		r.Source, r.SharedBody, what, would("were left", "would be left"))
	fmt.Fprintln(w, "  They may be captured deliveries sent again under a new id and applied again before the guard existed,")
	fmt.Fprintln(w, "  or a provider sending one body twice: check what their handlers did.")
	for _, s := range r.SharedBodyExamples {
		fmt.Fprintf(w, "  %s/%s (id %d, received %s) has the %s of %s/%s (id %d, received %s)\n",
			r.Source, oneLine(s.EventID, 100), s.ID, fmtTime(s.ReceivedAt), what,
			r.Source, oneLine(s.HeldByEventID, 100), s.HeldByID, fmtTime(s.HeldByReceivedAt))
	}
	more := r.SharedBody - int64(len(r.SharedBodyExamples))
	switch {
	case more > 0 && !r.DryRun && !r.Rekey:
		// With --rekey, some of them keep a key of the old guard, and
		// this query would miss them.
		fmt.Fprintf(w, "  ... and %d more: after this run, the events of %s left with replay_key IS NULL AND pruned_at IS NULL in inbox_events\n", more, r.Source)
	case more > 0:
		fmt.Fprintf(w, "  ... and %d more\n", more)
	}
}
