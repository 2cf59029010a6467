package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/catchup"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/ingest"
)

func newCatchupCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catchup",
		Short: "Recover events a provider gave up delivering, from its API",
		Long: `Recover the events a provider stopped trying to deliver: after an outage longer
than its retry window, a DNS or certificate mistake, a rotated secret that
answered 400, or an endpoint the provider disabled.

"catchup stripe" lists events from Stripe's API and stores the ones the inbox
lacks, as the receiver would have. "catchup github" asks GitHub to redeliver
the failed deliveries of a hook, which then come through the receiver.`,
	}
	cmd.AddCommand(newCatchupStripeCmd(getenv), newCatchupGitHubCmd(getenv))
	return cmd
}

func newCatchupStripeCmd(getenv func(string) string) *cobra.Command {
	var (
		asJSON, failedOnly bool
		since, apiURL      string
		so                 catchup.StripeOptions
		opts               = catchup.Options{Source: "stripe", Origin: catchup.OriginStripeAPI}
	)
	cmd := &cobra.Command{
		Use:   "stripe --since 72h [--type T] [--failed-only] [--dry-run] [--json]",
		Short: "Store the Stripe events the inbox lacks, listed from Stripe's Events API",
		Long: `List the events Stripe created since --since from its Events API, and store each
one the inbox lacks, in the receiver's own transaction: the event and its
job together, keyed by its event id. An event already stored (delivered by
webhook, or recovered before) is left alone, and one delivered by webhook
later is a duplicate, so running this again, or while webhooks arrive, is
safe.

Each recovered event gets a recovery_audit row in the same transaction: who
(--by), when, why (--reason), and that it came from the API rather than from
a signed delivery. "hookctl events get" shows it.

Events are stored a page (100) at a time, a transaction per page. If the
command fails midway, what it stored is committed; run it again and it
continues. A rate limit (429) or a server error is retried, waiting longer
each time.

Stripe lets an API list events of the last 30 days. The payload stored is the
event as the API renders it, which is what a delivery carries unless the
webhook endpoint pins another API version. --failed-only lists only events
that some endpoint has not received (delivery_success=false); events of an
endpoint that was disabled are not among them, so after an endpoint was
disabled list everything.

Needs STRIPE_API_KEY (or STRIPE_API_KEY_FILE): a restricted key with read
access to Events is enough. The key is never printed or logged. Reads
DATABASE_URL. A progress bar is drawn on a terminal; --json prints the
summary and every event recovered.`,
		Example: `  hookctl catchup stripe --since 72h --dry-run
  hookctl catchup stripe --since 72h --reason "INC-31: receiver down 3 days"
  hookctl catchup stripe --since 2026-11-01T00:00:00Z --type 'invoice.*' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := requiredSince(since, "72h")
			if err != nil {
				return err
			}
			if time.Since(t) > 30*24*time.Hour {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: Stripe lists events of the last 30 days only; older events cannot be recovered\n")
			}
			so.Since, so.FailedOnly, so.URL = t, failedOnly, apiURL
			if so.Key, err = config.Required(getenv, "STRIPE_API_KEY", "a restricted key with read access to Events"); err != nil {
				return err
			}
			if opts.By == "" {
				opts.By = currentUser(getenv)
			}
			if opts.By == "" && !opts.DryRun {
				return errors.New("cannot tell who you are: pass --by")
			}
			errOut := cmd.ErrOrStderr()
			bar := newProgress(errOut, isTerminal(errOut), t)
			so.OnRetry = func(n int, wait time.Duration, err error) {
				bar.note(fmt.Sprintf("Stripe API request failed (%s); retry %d in %s", oneLine(err.Error(), 160), n, fmtAge(wait)))
			}
			l, err := catchup.NewStripe(so)
			if err != nil {
				return err
			}
			pool, err := connect(cmd, getenv)
			if err != nil {
				return err
			}
			defer pool.Close()
			rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
				Logger:     slog.New(slog.DiscardHandler),
				Middleware: []rivertype.Middleware{&ingest.JobIDs{}},
			})
			if err != nil {
				return fmt.Errorf("create insert-only river client: %w", err)
			}
			opts.Progress = bar.update
			sum, runErr := catchup.Run(cmd.Context(), l, catchup.NewStore(pool, rc), opts)
			bar.done()
			// The key never leaves the lister in an error, but this is the
			// last place to be sure.
			runErr = catchup.Redact(runErr, so.Key)
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, stripeReport{Summary: sum, Since: t.UTC().Truncate(time.Second), Error: errString(runErr)}); err != nil {
					return err
				}
			} else {
				printCatchup(out, sum, t)
			}
			if runErr != nil {
				return fmt.Errorf("catch-up stopped: %w; the %d events stored before are committed: run it again to continue", runErr, sum.Stored)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "events created since a duration before now (72h, 3d) or an RFC 3339 time; required")
	f.StringVar(&so.Type, "type", "", "only events of this type; a wildcard such as 'invoice.*' works")
	f.BoolVar(&failedOnly, "failed-only", false, "only events some webhook endpoint has not received (Stripe's delivery_success=false)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "list and compare with the inbox; store nothing")
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	f.StringVar(&opts.Source, "source", "stripe", "the receiver's Stripe source, under which events are stored")
	f.StringVar(&opts.By, "by", "", "who recovers, for the audit (default: $USER, or the OS user)")
	f.StringVar(&opts.Reason, "reason", "", "why, for the audit")
	f.StringVar(&apiURL, "api-url", "", "Stripe API base URL (default https://api.stripe.com; for stripe-mock)")
	return cmd
}

// stripeReport is the --json output of catchup stripe.
type stripeReport struct {
	catchup.Summary
	Since time.Time `json:"since"`
	// Error is why the run stopped early, if it did.
	Error string `json:"error,omitempty"`
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// maxListed is how many recovered events the text summary lists; --json
// lists them all.
const maxListed = 20

func printCatchup(out io.Writer, sum catchup.Summary, since time.Time) {
	verb := "stored now"
	if sum.DryRun {
		verb = "would store (dry run)"
	}
	fmt.Fprintf(out, "%s since %s: listed %d, already stored %d, %s %d", sum.Source, fmtTime(since), sum.Listed, sum.AlreadyStored, verb, sum.Stored)
	if sum.Refused > 0 {
		fmt.Fprintf(out, ", refused %d", sum.Refused)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(sum.Recovered) > 0 {
		fmt.Fprintln(tw, "EVENT\tTYPE\tCREATED\tJOB\tAUDIT")
		for i, r := range sum.Recovered {
			if i == maxListed {
				fmt.Fprintf(tw, "… and %d more (--json lists them all)\t\t\t\t\n", len(sum.Recovered)-maxListed)
				break
			}
			job, audit := "-", "-"
			if r.JobID != 0 {
				job, audit = fmt.Sprint(r.JobID), fmt.Sprint(r.AuditID)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", oneLine(r.EventID, 60), oneLine(r.Type, 40), fmtTime(r.Created), job, audit)
		}
	}
	for _, r := range sum.Refusals {
		fmt.Fprintf(tw, "REFUSED %s\t%s\t\t\t\n", oneLine(r.EventID, 60), oneLine(r.Reason, 100))
	}
	tw.Flush()
}

// progress draws a one-line bar on a terminal: how far back in time the
// listing has got, since the API lists newest first and says no total.
type progress struct {
	line  statusLine
	on    bool
	since time.Time
	start time.Time
}

func newProgress(w io.Writer, on bool, since time.Time) *progress {
	return &progress{line: statusLine{w: w}, on: on, since: since, start: time.Now()}
}

func (p *progress) update(s catchup.Summary) {
	if !p.on {
		return
	}
	frac := 0.0
	if span := p.start.Sub(p.since); span > 0 && !s.Oldest.IsZero() {
		frac = min(1, max(0, p.start.Sub(s.Oldest).Seconds()/span.Seconds()))
	}
	const width = 30
	n := int(frac * width)
	p.line.draw(fmt.Sprintf("[%s%s] %3.0f%%  listed %d, already stored %d, stored %d", strings.Repeat("#", n), strings.Repeat("-", width-n),
		frac*100, s.Listed, s.AlreadyStored, s.Stored))
}

// note prints a line above the bar.
func (p *progress) note(msg string) {
	p.line.erase()
	fmt.Fprintln(p.line.w, msg)
}

func (p *progress) done() { p.line.erase() }
