package riverdb

import "github.com/riverqueue/river/rivertype"

// LiveStates are the states of a job that will still run on its own:
// available, running, retryable, scheduled and pending. They make up a
// queue's backlog: drain waits for them, the queue metrics count them, and
// replay and prune leave an event alone while it has a job in one of them.
func LiveStates() []rivertype.JobState {
	return []rivertype.JobState{
		rivertype.JobStateAvailable,
		rivertype.JobStateRunning,
		rivertype.JobStateRetryable,
		rivertype.JobStateScheduled,
		rivertype.JobStatePending,
	}
}

// DeadStates are the states of a job that failed for good: discarded (out
// of attempts, or failed permanently) and cancelled. It will not run again
// without an operator (hookctl retry, or a replay).
func DeadStates() []rivertype.JobState {
	return []rivertype.JobState{
		rivertype.JobStateDiscarded,
		rivertype.JobStateCancelled,
	}
}

// FinalStates are the states a job does not leave on its own: DeadStates
// and completed. Every River state is either live or final.
func FinalStates() []rivertype.JobState {
	return append(DeadStates(), rivertype.JobStateCompleted)
}

// Names returns the states' names, in order. It is also how states are
// passed to SQL, as the argument of `state = ANY($n)`: pgx cannot encode a
// []rivertype.JobState for River's river_job_state[] type, whose OID it does
// not know, but it sends a []string as text, which Postgres reads as the
// river_job_state[] it inferred for $n. The planner then sees a constant
// array of the column's type and uses River's (state, queue, ...) index, as
// for literals. Casting in SQL instead, $n::text[]::river_job_state[], is
// not folded to a constant, and the planner reads all of river_job.
func Names(states []rivertype.JobState) []string {
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = string(s)
	}
	return names
}
