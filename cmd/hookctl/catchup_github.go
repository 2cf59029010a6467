package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/catchup"
	"github.com/hookline/hookline/internal/config"
)

func newCatchupGitHubCmd(getenv func(string) string) *cobra.Command {
	var (
		asJSON, dryRun bool
		since, apiURL  string
		source         = "github"
		opts           catchup.GitHubOptions
	)
	cmd := &cobra.Command{
		Use:   "github --hook ID (--repo OWNER/NAME | --org ORG) --since 24h [--dry-run] [--json]",
		Short: "Ask GitHub to redeliver a hook's failed deliveries",
		Long: `List a GitHub webhook's deliveries since --since and ask GitHub to redeliver
each event that never got a 2xx: neither its delivery nor any redelivery of
it. GitHub does not retry on its own. Redeliveries come back signed, through
the receiver, with their original delivery GUID (X-GitHub-Delivery), so an
event stored meanwhile is a duplicate.

An event whose delivery failed at GitHub's end but is in the inbox (the
receiver committed, and its answer came after GitHub's 10 seconds) is not
redelivered. Events are redelivered oldest first. A redelivery GitHub
refuses (it redelivers only deliveries of the last 3 days) is reported and
the others go on; the command then exits non-zero.

Needs GITHUB_TOKEN (or GITHUB_TOKEN_FILE): a fine-grained token with
"Webhooks" read and write on the repository, or "Webhooks" on the
organization. The token is never printed or logged. Reads DATABASE_URL, to
look the events up in the inbox under --source.`,
		Example: `  hookctl catchup github --repo acme/shop --hook 123456 --since 24h --dry-run
  hookctl catchup github --org acme --hook 654321 --since 3d --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := requiredSince(since, "24h")
			if err != nil {
				return err
			}
			opts.Since, opts.URL = t, apiURL
			if opts.Token, err = config.Required(getenv, "GITHUB_TOKEN", "a token that may administer the hook's webhooks"); err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			opts.OnRetry = func(n int, wait time.Duration, err error) {
				fmt.Fprintf(errOut, "GitHub API request failed (%s); retry %d in %s\n", oneLine(err.Error(), 160), n, fmtAge(wait))
			}
			g, err := catchup.NewGitHub(opts)
			if err != nil {
				return err
			}
			pool, err := connect(cmd, getenv)
			if err != nil {
				return err
			}
			defer pool.Close()
			sum, runErr := catchup.RedeliverGitHub(cmd.Context(), g, pool, source, dryRun)
			// As for Stripe's key: the last place to be sure.
			runErr = catchup.Redact(runErr, opts.Token)
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, struct {
					catchup.GitHubSummary
					Since time.Time `json:"since"`
					Error string    `json:"error,omitempty"`
				}{sum, t.UTC().Truncate(time.Second), errString(runErr)}); err != nil {
					return err
				}
			} else {
				printGitHubCatchup(out, sum, t)
			}
			switch {
			case runErr != nil:
				return fmt.Errorf("catch-up stopped: %w; the %d redeliveries asked for are under way: run it again to continue", runErr, len(sum.Redelivered))
			case len(sum.Errors) > 0:
				return fmt.Errorf("GitHub refused %d of %d redeliveries", len(sum.Errors), len(sum.Errors)+len(sum.Redelivered))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&opts.HookID, "hook", 0, "the webhook's id (in its settings URL); required")
	f.StringVar(&opts.Repo, "repo", "", "the repository that owns the hook, as owner/name")
	f.StringVar(&opts.Org, "org", "", "the organization that owns the hook")
	f.StringVar(&since, "since", "", "deliveries since a duration before now (24h, 3d) or an RFC 3339 time; required")
	f.BoolVar(&dryRun, "dry-run", false, "list what would be redelivered; ask for nothing")
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	f.StringVar(&source, "source", source, "the receiver's GitHub source, under which its events are stored")
	f.StringVar(&apiURL, "api-url", "", "GitHub API base URL (default https://api.github.com; GitHub Enterprise Server: https://HOST/api/v3)")
	return cmd
}

func printGitHubCatchup(out io.Writer, sum catchup.GitHubSummary, since time.Time) {
	verb := "redelivered now"
	if sum.DryRun {
		verb = "would redeliver (dry run)"
	}
	fmt.Fprintf(out, "%s hook %d since %s: deliveries listed %d, events failed %d, already stored %d, %s %d",
		sum.Source, sum.HookID, fmtTime(since), sum.Listed, sum.Failed, sum.AlreadyStored, verb, len(sum.Redelivered))
	if len(sum.Errors) > 0 {
		fmt.Fprintf(out, ", refused %d", len(sum.Errors))
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(sum.Redelivered) > 0 {
		fmt.Fprintln(tw, "GUID\tEVENT\tDELIVERY\tDELIVERED\tSTATUS")
		for i, d := range sum.Redelivered {
			if i == maxListed {
				fmt.Fprintf(tw, "… and %d more (--json lists them all)\t\t\t\t\n", len(sum.Redelivered)-maxListed)
				break
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d %s\n", oneLine(d.GUID, 40), oneLine(strings.TrimSuffix(d.Event+"."+d.Action, "."), 40),
				d.ID, fmtTime(d.DeliveredAt), d.StatusCode, oneLine(d.Status, 40))
		}
	}
	for _, e := range sum.Errors {
		fmt.Fprintf(tw, "REFUSED %s\t%s\t\t\t\n", oneLine(e.Delivery.GUID, 40), oneLine(e.Error, 120))
	}
	tw.Flush()
}
