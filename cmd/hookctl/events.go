package main

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/ops"
)

func newEventsCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List and inspect stored events",
		Long: `List and inspect the events in the inbox (inbox_events), with the state of
their River jobs.

An event's status is "processed" once a worker applied it, or "stale" if an
ordered handler completed it without running because a newer event of the
same object had already been applied. Until then it is
the River state of its latest job: available, running, retryable (failed,
will retry), scheduled, pending, discarded (the dead letter: retries used
up), cancelled (a permanent error) or completed; or "received" when no job
of it is left in river_job. Reads DATABASE_URL.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newEventsListCmd(getenv), newEventsGetCmd(getenv))
	return cmd
}

func newEventsListCmd(getenv func(string) string) *cobra.Command {
	var (
		asJSON bool
		since  string
		f      ops.EventFilter
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List events, newest first, with their processing status",
		Long: `List events, newest first: when each was received, its type, its status, its
latest job, that job's attempts and the error of its last failed attempt.

--status takes a status (see "hookctl events --help"), or "unprocessed"
(any event not yet processed) or "failed" (discarded or cancelled: it will
not run again without an operator). The statuses that are River states are
looked up from the jobs in that state, which is quick however large the
inbox; "processed", "unprocessed" and "received" walk back from the newest
event, so bound them with --since on a large inbox.

A full page ends with the --before flag that shows the next one: each page
starts below the inbox id of the previous page's last event, and costs the
same however far back it is.`,
		Example: `  hookctl events list --source stripe --since 1h
  hookctl events list --status failed
  hookctl events list --source stripe --object sub_1PqR
  hookctl events list --before 1234567
  hookctl events list --since 2026-01-02T00:00:00Z --status retryable --limit 500 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Status != "" && !slices.Contains(ops.Statuses, f.Status) {
				return fmt.Errorf("--status %q: want one of %s", f.Status, strings.Join(ops.Statuses, ", "))
			}
			if f.Limit <= 0 {
				return fmt.Errorf("--limit must be positive, not %d", f.Limit)
			}
			if f.Before < 0 {
				return fmt.Errorf("--before must be an inbox id, not %d", f.Before)
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()
			events, err := client.ListEvents(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), events)
			}
			if err := printEvents(cmd.OutOrStdout(), events); err != nil {
				return err
			}
			if len(events) == f.Limit {
				fmt.Fprintf(cmd.OutOrStdout(), "(more may follow: rerun with --before %d)\n", events[len(events)-1].InboxID)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	fl.StringVar(&f.Source, "source", "", "only events of this source")
	fl.StringVar(&f.Type, "type", "", "only events of this type")
	fl.StringVar(&f.Object, "object", "", "only events of this object (its key, such as a Stripe subscription id; quick with --source)")
	fl.StringVar(&since, "since", "", "only events received since: a duration before now (1h, 2d) or an RFC 3339 time")
	fl.StringVar(&f.Status, "status", "", "only events with this status: "+strings.Join(ops.Statuses, "|"))
	fl.IntVar(&f.Limit, "limit", 50, "at most this many events")
	fl.Int64Var(&f.Before, "before", 0, "only events with an inbox id below this one: the next page after a full one")
	return cmd
}

func printEvents(out io.Writer, events []ops.EventSummary) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tSOURCE\tEVENT ID\tTYPE\tOBJECT\tEVENT TIME\tSTATUS\tJOB\tATTEMPTS\tLAST ERROR")
	for _, ev := range events {
		job, attempts, lastErr := "-", "-", ""
		if ev.Job != nil {
			job = fmt.Sprintf("%d (%s)", ev.Job.ID, ev.Job.State)
			if ev.Job.Replay {
				job = fmt.Sprintf("%d (%s, replay)", ev.Job.ID, ev.Job.State)
			}
			attempts = fmt.Sprintf("%d/%d", ev.Job.Attempt, ev.Job.MaxAttempts)
			lastErr = oneLine(ev.Job.LastError, 80)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(ev.ReceivedAt), ev.Source, oneLine(ev.EventID, 60),
			oneLine(ev.Type, 40), cmp.Or(oneLine(ev.Object, 40), "-"), fmtTime(ev.EventTime), ev.Status, job, attempts, lastErr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(events) == 0 {
		fmt.Fprintln(out, "(no events match)")
	}
	return nil
}

func newEventsGetCmd(getenv func(string) string) *cobra.Command {
	var asJSON, withPayload bool
	cmd := &cobra.Command{
		Use:   "get <source> <event-id>",
		Short: "Show one event, its jobs and its replays",
		Long: `Show one event: when it was received and processed, its status, every job
of it still in river_job (the original and any replays, with their last
errors), and its replay audit. The body and headers (which hold the
signature) are shown only with --payload: in JSON as payload_base64
(byte-exact) and payload (when it is UTF-8 text).`,
		Example: `  hookctl events get stripe evt_1NqX
  hookctl events get bank tr_42 --payload`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()
			ev, err := client.GetEvent(cmd.Context(), args[0], args[1], withPayload)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				v := struct {
					ops.EventDetail
					PayloadBase64 *string `json:"payload_base64,omitempty"`
					Payload       *string `json:"payload,omitempty"`
				}{EventDetail: ev}
				if withPayload {
					b64 := base64.StdEncoding.EncodeToString(ev.Payload)
					v.PayloadBase64 = &b64
					if utf8.Valid(ev.Payload) {
						text := string(ev.Payload)
						v.Payload = &text
					}
				}
				return writeJSON(out, v)
			}
			return printEvent(out, ev, withPayload)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().BoolVar(&withPayload, "payload", false, "also show the stored headers and body")
	return cmd
}

func printEvent(out io.Writer, ev ops.EventDetail, withPayload bool) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Event\t%s/%s (inbox id %d)\n", ev.Source, ev.EventID, ev.InboxID)
	fmt.Fprintf(tw, "Type\t%s\n", ev.Type)
	if ev.APIVersion != "" {
		fmt.Fprintf(tw, "API version\t%s\n", ev.APIVersion)
	}
	fmt.Fprintf(tw, "Received\t%s\n", fmtTime(ev.ReceivedAt))
	fmt.Fprintf(tw, "Event time\t%s\n", fmtTime(ev.EventTime))
	if ev.Object != "" {
		fmt.Fprintf(tw, "Object\t%s\n", printable(ev.Object))
		if w := ev.Watermark; w != nil {
			fmt.Fprintf(tw, "Newest applied\t%s (event time %s, at %s)\n", printable(w.EventID), fmtTime(w.EventTime), fmtTime(w.UpdatedAt))
		}
	}
	if r := ev.Recovery; r != nil {
		fmt.Fprintf(tw, "Origin\trecovered from %s by %s at %s (job %d): %s\n", r.Origin, r.RecoveredBy, fmtTime(r.RecoveredAt), r.JobID, oneLine(r.Reason, 100))
	}
	fmt.Fprintf(tw, "Processed\t%s\n", fmtTimePtr(ev.ProcessedAt))
	fmt.Fprintf(tw, "Status\t%s\n", ev.Status)
	if ev.SupersededBy != "" {
		fmt.Fprintf(tw, "Stale\tcompleted without running its ordered handler: %s, a newer event of the object, had been applied\n", printable(ev.SupersededBy))
	}
	switch {
	case ev.PrunedAt != nil:
		fmt.Fprintf(tw, "Payload\tpruned at %s (the key is kept; the event cannot be replayed)\n", fmtTime(*ev.PrunedAt))
	case withPayload:
		fmt.Fprintf(tw, "Payload\t%d bytes, below\n", ev.PayloadBytes)
	default:
		fmt.Fprintf(tw, "Payload\t%d bytes (shown with --payload)\n", ev.PayloadBytes)
	}
	fmt.Fprintln(tw)

	fmt.Fprintln(tw, "JOB\tSTATE\tATTEMPTS\tREPLAY\tCREATED\tFINALIZED")
	for _, j := range ev.Jobs {
		fmt.Fprintf(tw, "%d\t%s\t%d/%d\t%t\t%s\t%s\n", j.ID, j.State, j.Attempt, j.MaxAttempts, j.Replay,
			fmtTime(j.CreatedAt), fmtTimePtr(j.FinalizedAt))
	}
	if len(ev.Jobs) == 0 {
		fmt.Fprintln(tw, "(none left in river_job)\t\t\t\t\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The whole error, on lines of its own: the list's column shows its
	// start, and the end (the wrapped cause) is often what on-call needs.
	for _, j := range ev.Jobs {
		if j.LastError != "" {
			fmt.Fprintf(out, "\nLAST ERROR of job %d\n%s\n", j.ID, printable(j.LastError))
		}
	}
	if len(ev.Replays) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "REPLAYED AT\tBY\tJOB\tREASON")
		for _, r := range ev.Replays {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", fmtTime(r.ReplayedAt), r.ReplayedBy, r.JobID, oneLine(r.Reason, 100))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if withPayload && ev.PrunedAt == nil {
		fmt.Fprintln(out, "\nHEADERS")
		keys := make([]string, 0, len(ev.Headers))
		for k := range ev.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(out, "%s: %s\n", printable(k), printable(ev.Headers[k]))
		}
		fmt.Fprintln(out, "\nBODY")
		fmt.Fprintln(out, printable(string(ev.Payload)))
	}
	return nil
}
