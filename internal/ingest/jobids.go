package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/inbox"
)

// JobIDs is River job-insert middleware that gives each event's job the id
// that its inbox row reserved (inbox.Inserted.JobID), so that the row
// names its job without being written twice. Install it in the River
// client that the ingesters insert with:
//
//	river.Config{Middleware: []rivertype.Middleware{&ingest.JobIDs{}}}
//
// It acts only on inserts made by Enqueue, which passes the reserved ids in
// the context; other inserts through the client are left to River's
// sequence.
type JobIDs struct {
	river.MiddlewareDefaults
}

var _ rivertype.JobInsertMiddleware = &JobIDs{}

// reservedKey is the context key of the reserved ids, by inbox id.
type reservedKey struct{}

// InsertMany implements rivertype.JobInsertMiddleware.
func (*JobIDs) InsertMany(ctx context.Context, manyParams []*rivertype.JobInsertParams,
	doInner func(context.Context) ([]*rivertype.JobInsertResult, error),
) ([]*rivertype.JobInsertResult, error) {
	if reserved, ok := ctx.Value(reservedKey{}).(map[int64]int64); ok {
		for _, p := range manyParams {
			if args, ok := p.Args.(hooklinetype.JobArgs); ok && !args.Replay {
				if id, ok := reserved[args.InboxID]; ok {
					p.ID = &id
				}
			}
		}
	}
	return doInner(ctx)
}

// Enqueue inserts, in tx, the River job of each row that inbox.Insert or
// InsertMany created, with the id the row reserved when rc has JobIDs. A
// job that got another id (rc without JobIDs) is recorded on its row with
// inbox.SetJobs instead, at the cost of a second write of the row. It
// returns each row's job id, in the order of rows. metadata, which may be
// nil, holds the trace context to store with each row's job, by key.
func Enqueue(ctx context.Context, rc *river.Client[pgx.Tx], tx pgx.Tx, rows []inbox.Inserted, metadata map[inbox.Key][]byte) ([]int64, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	params := make([]river.InsertManyParams, len(rows))
	reserved := make(map[int64]int64, len(rows))
	for i, r := range rows {
		params[i] = river.InsertManyParams{
			Args:       hooklinetype.JobArgs{InboxID: r.ID, Source: r.Source, EventID: r.EventID, Type: r.Type, Object: r.Object},
			InsertOpts: insertOpts(metadata[r.Key]),
		}
		reserved[r.ID] = r.JobID
	}
	// Not InsertManyFastTx: its COPY takes no job ids. These jobs carry no
	// unique options, so no result is a skipped duplicate.
	results, err := rc.InsertManyTx(context.WithValue(ctx, reservedKey{}, reserved), tx, params)
	if err != nil {
		if len(rows) == 1 {
			return nil, fmt.Errorf("enqueue event %s/%s: %w", rows[0].Source, rows[0].EventID, err)
		}
		return nil, fmt.Errorf("enqueue %d jobs: %w", len(rows), err)
	}
	taken := make(map[int64]bool, len(rows))
	for _, r := range rows {
		taken[r.JobID] = true
	}
	var ids, jobs []int64
	for _, res := range results {
		if taken[res.Job.ID] {
			// Only JobIDs gives a job a reserved id, and only its own row's.
			continue
		}
		var args hooklinetype.JobArgs
		if err := json.Unmarshal(res.Job.EncodedArgs, &args); err != nil {
			return nil, fmt.Errorf("read args of job %d: %w", res.Job.ID, err)
		}
		ids, jobs = append(ids, args.InboxID), append(jobs, res.Job.ID)
	}
	if err := inbox.SetJobs(ctx, tx, ids, jobs); err != nil {
		return nil, err
	}
	other := make(map[int64]int64, len(ids))
	for i, id := range ids {
		other[id] = jobs[i]
	}
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.JobID
		if j, ok := other[r.ID]; ok {
			out[i] = j
		}
	}
	return out, nil
}
