package hooklinetype

import "github.com/riverqueue/river"

// Queue is the River queue that carries event jobs.
const Queue = "events"

// JobKind is the River job kind of JobArgs.
const JobKind = "process_event"

// JobArgs are the River job args that ask a worker to apply one stored
// event. The receiver inserts one with each new event, in the event's
// transaction; hookctl replay inserts one with Replay set.
//
// They refer to the inbox row rather than carrying the payload: River keeps
// args as jsonb under a GIN index, which reorders keys (breaking byte-exact
// bodies) and makes large args slow to insert and fetch.
type JobArgs struct {
	// InboxID is the inbox_events row id.
	InboxID int64 `json:"inbox_id"`
	// Source and EventID repeat the inbox key so that River UI and logs
	// show which event a job is for without a join.
	Source  string `json:"source"`
	EventID string `json:"event_id"`
	// Type is the event's type, so that the worker knows how its handler
	// runs (HandlerOpts) before it reads the row. Jobs enqueued before it
	// existed have none, and take the one-transaction path.
	Type string `json:"type,omitempty"`
	// Replay makes the worker apply the event even if it was applied
	// before. Only an operator's deliberate replay sets it.
	Replay bool `json:"replay,omitempty"`
	// Object is the event's object key (Event.Object), so that a worker
	// can take the object's lock for an ordered handler before it claims
	// the row, and leave an event whose object is busy out of a group
	// rather than hold the whole group waiting. Jobs enqueued before it
	// existed have none; their lock is taken after the claim.
	Object string `json:"object,omitempty"`
}

// Kind implements river.JobArgs.
func (JobArgs) Kind() string { return JobKind }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (JobArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: Queue} }
