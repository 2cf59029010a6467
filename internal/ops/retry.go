package ops

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookline/hookline/hooklinetype"
)

// RetryResult lists the jobs that RetryDiscarded or RetryCancelled
// re-drove.
type RetryResult struct {
	Queue string `json:"queue"`
	// State is the state the jobs were in: discarded or cancelled.
	State  string `json:"state"`
	Source string `json:"source,omitempty"`
	DryRun bool   `json:"dry_run"`
	// JobIDs are the jobs made available again (or, in a dry run, those
	// that would be).
	JobIDs []int64 `json:"job_ids"`
	Count  int     `json:"count"`
}

// retryPage is how many jobs are listed at a time.
const retryPage = 500

// RetryDiscarded re-drives the dead letters of the queue: every event job
// in state discarded (of source, if it is not empty) is made available
// again now, with River's JobRetry, which also grants one more attempt to a
// job that had used them all. The worker then processes the event as usual:
// an event already processed in the meantime is completed without effect.
// With dryRun, it only lists them.
func (c *Client) RetryDiscarded(ctx context.Context, source string, dryRun bool) (RetryResult, error) {
	return c.retry(ctx, rivertype.JobStateDiscarded, source, dryRun)
}

// RetryCancelled is RetryDiscarded for the event jobs in state cancelled:
// those whose handler returned a permanent error, and those an operator
// cancelled. River's cleaner deletes cancelled jobs a day after they end
// (CancelledJobRetentionPeriod); an event whose job is gone can be applied
// with a replay instead.
func (c *Client) RetryCancelled(ctx context.Context, source string, dryRun bool) (RetryResult, error) {
	return c.retry(ctx, rivertype.JobStateCancelled, source, dryRun)
}

// retry makes every event job of the queue in state (of source, if it is
// not empty) available again, or with dryRun only lists them.
func (c *Client) retry(ctx context.Context, state rivertype.JobState, source string, dryRun bool) (RetryResult, error) {
	res := RetryResult{Queue: c.queue, State: string(state), Source: source, DryRun: dryRun, JobIDs: []int64{}}
	params := river.NewJobListParams().
		Queues(c.queue).
		Kinds(hooklinetype.JobKind).
		States(state).
		OrderBy(river.JobListOrderByID, river.SortOrderAsc).
		First(retryPage)
	if source != "" {
		params = params.Where("args->>'source' = @source", river.NamedArgs{"source": source})
	}
	for {
		list, err := c.river.JobList(ctx, params)
		if err != nil {
			return res, fmt.Errorf("list %s jobs of queue %s%s: %w", state, c.queue, forSource(source), err)
		}
		for _, job := range list.Jobs {
			if !dryRun {
				if _, err := c.river.JobRetry(ctx, job.ID); err != nil {
					return res, fmt.Errorf("retry %s job %d (event %s), after retrying %d: %w",
						state, job.ID, eventOf(job), res.Count, err)
				}
			}
			res.JobIDs = append(res.JobIDs, job.ID)
			res.Count++
		}
		if len(list.Jobs) < retryPage {
			return res, nil
		}
		params = params.After(list.LastCursor)
	}
}

func forSource(source string) string {
	if source == "" {
		return ""
	}
	return " for source " + source
}

// eventOf names the event of a job, for messages.
func eventOf(job *rivertype.JobRow) string {
	var args hooklinetype.JobArgs
	if err := json.Unmarshal(job.EncodedArgs, &args); err != nil {
		return "?"
	}
	return args.Source + "/" + args.EventID
}
