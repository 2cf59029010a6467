package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/shed"
	"github.com/hookline/hookline/internal/throttle"
)

func newStatusCmd(getenv func(string) string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the events queue, the inbox and the connected workers",
		Long: `Show a snapshot of the pipeline, read from the database (DATABASE_URL):

  - the jobs of the "events" queue in each River state: the backlog
    (available, running, retryable, scheduled, pending), the dead letters
    (discarded), and the completed and cancelled jobs River still retains
    (24 hours by default);
  - how long the oldest available job has been waiting to run;
  - the completion rate: jobs completed in the last 1 and 5 minutes, per
    second;
  - whether the queue is paused (river_queue.paused_at), and every queue
    River knows;
  - the global concurrency limit (hookctl throttle), with who set it and
    when; each announced worker's share of it is its LIMIT;
  - the sources shed (hookctl shed), with their rates;
  - the running jobs split into those executing and those waiting at the
    throttle gate. River marks a job running when a worker fetches it, so
    under "hookctl throttle 2" it may count 48 running jobs of which 46
    wait. The split comes from each worker's heartbeat (every second), so
    jobs fetched since, jobs finished whose completion River has not yet
    recorded (it does so in batches), and jobs held by a worker that died
    are shown apart, at no live worker's gate;
  - the new events the inbox received in the last hour, and the duplicate
    deliveries in that hour (counted in inbox_duplicates by the receivers).

Workers: River keeps no registry of worker processes, and Postgres does not
show which sessions LISTEN (River's notifier connection is usually seen idle
after its 5-second "-- ping", like any pool connection), so listeners are
not looked for. Instead these views are shown, each labelled for what it is:

  - ANNOUNCED: worker processes that announced themselves in
    worker_processes in the last 30 s (workers running the concurrency
    controller, internal/throttle, do so every second), with their limit
    and the jobs executing and waiting at their gate.
  - LEADER: River's elected leader (river_leader). Every started worker
    takes part in the election and renews the lease every few seconds, so a
    current leader proves that at least one worker is alive, even an idle
    one. None means that no worker runs.
  - WORKERS: River client ids (by default "<hostname>_<start time>") of the
    workers that hold running jobs now or finished jobs in the last 5
    minutes, from river_job.attempted_by. An idle worker does not appear.
    Its running count is River's, jobs waiting at its gate included.
  - CONNECTIONS: this database's client connections from pg_stat_activity,
    by application name and address: receivers, workers and this hookctl
    alike. Without pg_read_all_stats, other roles' addresses are hidden.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()
			st, err := client.Status(cmd.Context())
			if err != nil {
				return err
			}
			notes := statusNotes(st)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), struct {
					ops.Status
					Notes []string `json:"notes"`
				}{st, notes})
			}
			return printStatus(cmd.OutOrStdout(), st, notes)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func statusNotes(st ops.Status) []string {
	var notes []string
	if st.Paused {
		notes = append(notes, fmt.Sprintf("queue %s is paused since %s: workers fetch nothing until `hookctl resume`", st.Queue, fmtTime(*st.PausedAt)))
	}
	if !st.Registered {
		notes = append(notes, fmt.Sprintf("queue %s has no river_queue row: no worker has worked it in the last 24 hours", st.Queue))
	}
	if st.Leader == nil {
		notes = append(notes, "no River leader: no worker process is running")
	}
	if st.Throttle.Limit != nil && st.Running.WaitingAtGate > 0 {
		notes = append(notes, fmt.Sprintf("%d running jobs wait at the throttle gate for a slot under the global limit of %d: `hookctl throttle --reset` lifts it",
			st.Running.WaitingAtGate, *st.Throttle.Limit))
	}
	for _, s := range st.Sheds {
		notes = append(notes, fmt.Sprintf("source %s is shed: above %g events/s each receiver answers 429; `hookctl shed %s --off` lifts it", s.Source, s.Rate, s.Source))
	}
	return notes
}

func printStatus(out io.Writer, st ops.Status, notes []string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	paused := "no"
	if st.Paused {
		paused = "yes, since " + fmtTime(*st.PausedAt)
	}
	fmt.Fprintf(tw, "Queue\t%s (paused: %s)\n", st.Queue, paused)
	oldest := "none available"
	if st.OldestAvailableAgeSeconds != nil {
		oldest = fmtAge(time.Duration(*st.OldestAvailableAgeSeconds * float64(time.Second)))
	}
	fmt.Fprintf(tw, "Oldest available job\t%s\n", oldest)
	fmt.Fprintf(tw, "Completed per second\t%.2f over 1 min, %.2f over 5 min\n", st.CompletedPerSecond1m, st.CompletedPerSecond5m)
	fmt.Fprintf(tw, "Inbox, last hour\t%d new events received, %d duplicate deliveries\n", st.InboxReceivedLastHour, st.DuplicatesLastHour)
	if st.Leader != nil {
		fmt.Fprintf(tw, "River leader\t%s (elected %s, lease until %s)\n", st.Leader.ID, fmtTime(st.Leader.ElectedAt), fmtTime(st.Leader.ExpiresAt))
	} else {
		fmt.Fprintf(tw, "River leader\tnone\n")
	}
	fmt.Fprintf(tw, "Throttle\t%s\n", describeThrottle(st.Throttle, len(st.Announced)))
	fmt.Fprintf(tw, "Shed\t%s\n", describeSheds(st.Sheds))
	fmt.Fprintln(tw)

	j := st.Jobs
	fmt.Fprintln(tw, "JOBS\tAVAILABLE\tRUNNING\tRETRYABLE\tSCHEDULED\tPENDING\tDISCARDED\tCOMPLETED\tCANCELLED")
	fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", st.Queue,
		j.Available, j.Running, j.Retryable, j.Scheduled, j.Pending, j.Discarded, j.Completed, j.Cancelled)
	if err := tw.Flush(); err != nil {
		return err
	}
	// Outside the table, so that its long text does not widen a column.
	fmt.Fprintf(out, "running: %s\n\n", describeRunningSplit(st.Running))

	fmt.Fprintln(tw, "QUEUE\tPAUSED AT\tUPDATED AT")
	for _, q := range st.Queues {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", q.Name, fmtTimePtr(q.PausedAt), fmtTime(q.UpdatedAt))
	}
	if len(st.Queues) == 0 {
		fmt.Fprintln(tw, "(none)\t\t")
	}
	fmt.Fprintln(tw)

	if st.WorkerRegistry {
		fmt.Fprintln(tw, "ANNOUNCED WORKERS (last 30 s)\tHOST\tPID\tLIMIT\tEXECUTING\tWAITING AT GATE\tSTARTED\tLAST SEEN")
		for _, w := range st.Announced {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", w.ID, w.Host, w.PID, describeShare(w, st.Throttle),
				w.Executing, w.WaitingAtGate, fmtTime(w.StartedAt), fmtTime(w.LastSeenAt))
		}
		if len(st.Announced) == 0 {
			fmt.Fprintln(tw, "(none)\t\t\t\t\t\t\t")
		}
		fmt.Fprintln(tw)
	}

	fmt.Fprintln(tw, "WORKERS (active in the last 5 min)\tRUNNING OR AT GATE\tCOMPLETED 5M\tFAILED 5M\tLAST ACTIVITY")
	for _, w := range st.Workers {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", w.ClientID, w.Running, w.CompletedLast5m, w.FailedLast5m, fmtTime(w.LastActivityAt))
	}
	if len(st.Workers) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t\t")
	}
	fmt.Fprintln(tw)

	fmt.Fprintln(tw, "CONNECTIONS (application)\tCLIENT\tCONNECTIONS\tACTIVE\tOLDEST")
	for _, c := range st.Connections {
		app := c.ApplicationName
		if app == "" {
			app = "(no application_name)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", app, c.ClientAddr, c.Connections, c.Active, fmtTime(c.OldestStart))
	}
	fmt.Fprintln(tw)
	for _, n := range notes {
		fmt.Fprintf(tw, "note: %s\n", n)
	}
	return tw.Flush()
}

// describeThrottle says whether a global limit is set, and by whom.
func describeThrottle(t throttle.Setting, live int) string {
	if t.Limit == nil {
		return "no global limit: each worker runs up to its WORKER_CONCURRENCY"
	}
	return fmt.Sprintf("global limit %d, set by %s at %s, shared by %d announced worker process(es) (LIMIT below)",
		*t.Limit, *t.SetBy, fmtTime(*t.SetAt), live)
}

// describeShare is a process's limit: its share of the global limit, or
// its own WORKER_CONCURRENCY.
func describeShare(p throttle.Process, t throttle.Setting) string {
	if t.Limit == nil {
		return fmt.Sprintf("%d (its concurrency)", p.EffectiveLimit)
	}
	return fmt.Sprintf("%d of %d (share)", p.EffectiveLimit, p.ConfiguredLimit)
}

// describeSheds lists the sources shed, with their rates.
func describeSheds(sheds []shed.Active) string {
	if len(sheds) == 0 {
		return "none: every source is admitted"
	}
	parts := make([]string, len(sheds))
	for i, s := range sheds {
		parts[i] = fmt.Sprintf("%s at %g events/s per receiver (set by %s at %s)", s.Source, s.Rate, s.SetBy, fmtTime(s.SetAt))
	}
	return strings.Join(parts, "; ")
}

// describeRunningSplit says what River's running jobs are doing.
func describeRunningSplit(r throttle.Running) string {
	s := fmt.Sprintf("%d executing, %d waiting at the throttle gate", r.Executing, r.WaitingAtGate)
	if r.Unreported > 0 {
		s += fmt.Sprintf(", %d at no live worker's gate (fetched, or finished and not yet recorded by River's batched completer, since the last heartbeat; or held by a worker that died)", r.Unreported)
	}
	return s
}
