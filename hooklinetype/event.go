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
}
