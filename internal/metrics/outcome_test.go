package metrics

import (
	"context"
	"errors"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

func TestOutcomeMirrorsHowRiverSettlesAnAttempt(t *testing.T) {
	t.Parallel()
	live := context.Background()
	stopped, stop := context.WithCancel(live)
	stop()
	remote, cancelRemote := context.WithCancelCause(live)
	cancelRemote(rivertype.ErrJobCancelledRemotely)
	early := &rivertype.JobRow{Attempt: 1, MaxAttempts: 3}
	last := &rivertype.JobRow{Attempt: 3, MaxAttempts: 3}
	boom := errors.New("boom")

	for _, tc := range []struct {
		name string
		ctx  context.Context
		job  *rivertype.JobRow
		err  error
		want string
	}{
		{"nil completes", live, early, nil, OutcomeCompleted},
		{"an error with attempts left is retried", live, early, boom, OutcomeFailed},
		{"an error on the last attempt discards", live, last, boom, OutcomeDiscarded},
		{"JobCancel cancels, even on the last attempt", live, last, river.JobCancel(boom), OutcomeCancelled},
		{"JobSnooze snoozes", live, last, river.JobSnooze(0), OutcomeSnoozed},
		{"a remote cancel cancels", remote, early, context.Canceled, OutcomeCancelled},
		{"a cancelled context on stop interrupts", stopped, last, context.Canceled, OutcomeInterrupted},
		{"a job's own timeout is an error", live, early, context.DeadlineExceeded, OutcomeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, outcome(tc.ctx, tc.job, tc.err))
		})
	}
}
