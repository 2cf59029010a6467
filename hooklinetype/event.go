package hooklinetype

import "time"

// Event is a stored webhook event, as a handler reads it.
type Event struct {
	// InboxID is the event's row in inbox_events.
	InboxID int64
	// Source is the sender, the name of its source (/api/webhooks/<source>).
	Source string
	// EventID is the sender's id for the event: with Source, the key that
	// makes a redelivery a duplicate. Pass Source + "/" + EventID
	// downstream as an idempotency key for effects outside the handler's
	// transaction.
	EventID string
	// Type is the event type, such as "charge.succeeded"; empty for a
	// sender that has none.
	Type string
	// APIVersion is Stripe's api_version; empty for other senders.
	APIVersion string
	// Payload is the body exactly as it was received and verified.
	Payload []byte
	// Headers are the request headers the source keeps (its signature
	// headers, Content-Type, User-Agent), for audit and re-verification.
	Headers map[string]string
	// ReceivedAt is when the receiver stored the event.
	ReceivedAt time.Time
	// Object is the key of the object the event is about, such as the
	// Stripe subscription of customer.subscription.updated
	// (data.object.id), as the source locates it (docs/SOURCES.md); empty
	// when it locates none. Ordered handlers (HandlerOpts.Ordered) order
	// and serialise an object's events by it.
	Object string
	// Time is when the provider says the event happened (Stripe's
	// created, Slack's event_time; docs/SOURCES.md), or ReceivedAt for a
	// source that has none. Ordered handlers compare it to tell a stale
	// event from a newer one.
	Time time.Time
}
