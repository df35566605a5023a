package subscription

import (
	"context"
	"strconv"
	"time"
)

// Owner kinds: who a Subscription belongs to (the principal of its
// latest write, from that write's audit event).
const (
	OwnerToken   = "token"   // an API token: Owner.ID is the token id
	OwnerAccount = "account" // an account signed in (a session): Owner.ID is the account id
)

// States of a Subscription's delivery (the FHIR status codes).
const (
	StateRequested = "requested"
	StateActive    = "active"
	StateError     = "error"
	StateOff       = "off"
)

// Notification kinds.
const (
	KindEvent     = "event"     // a change that may match the criteria
	KindHandshake = "handshake" // the first contact with a rest-hook endpoint
)

// Row is the delivery state of one Subscription (table subscriptions).
type Row struct {
	ID        string
	Version   int64 // the resource version the row reflects
	OwnerKind string
	OwnerID   string
	CritType  string
	Channel   string
	State     string
	Failures  int
	Updated   time.Time
}

// Notification is one notification owed (table
// subscription_notifications). Sub, Leaf, ResType and ResID identify it:
// the same change enqueued twice is one notification.
type Notification struct {
	Sub        string
	Leaf       int64 // leaf index of the write's audit event
	ResType    string
	ResID      string
	ResVersion int64
	Kind       string
	Patients   []string // "Patient/<id>" the change touched
	Attempts   int
	NextAt     time.Time
	Created    time.Time
	Channel    string // the subscription's channel (from Claim)
}

// ID is the notification's stable id, sent with every attempt so a
// receiver can drop a repeat (delivery is at least once).
func (n Notification) ID() string {
	return n.Sub + ":" + itoa(n.Leaf) + ":" + n.ResType + "/" + n.ResID
}

// Store keeps subscriptions' delivery state and the notifications owed.
// The SQL store implements it (internal/storage/sqldb); every method is
// safe for concurrent use by several processes on one database.
type Store interface {
	// PutSubscription stores r unless the stored row reflects a later
	// version of the resource.
	PutSubscription(ctx context.Context, r Row) error
	// Subscription returns the row of id, or an error wrapping
	// storage.ErrNotFound.
	Subscription(ctx context.Context, id string) (Row, error)
	// SubscribedTo returns the rows whose criteria search typ, in state.
	SubscribedTo(ctx context.Context, typ, state string) ([]Row, error)
	// SetState sets id's state and failure count if its row still
	// reflects version (else it changes nothing and returns nil).
	SetState(ctx context.Context, id string, version int64, state string, failures int) error
	// Enqueue adds notifications; one already present is left as is.
	Enqueue(ctx context.Context, ns []Notification) error
	// Claim leases up to limit notifications due at now to holder until
	// now+lease, skipping those whose lease has not run out, and those
	// of websocket subscriptions unless local reports the subscription
	// bound here. Each returned notification is held by holder alone.
	Claim(ctx context.Context, holder string, now time.Time, lease time.Duration, limit int, local func(sub string) bool) ([]Notification, error)
	// Done deletes n if holder still holds it.
	Done(ctx context.Context, holder string, n Notification) error
	// Retry releases n for another attempt at next, with one more
	// attempt counted, if holder still holds it.
	Retry(ctx context.Context, holder string, n Notification, next time.Time) error
	// DropPending deletes every notification owed to sub.
	DropPending(ctx context.Context, sub string) error
	// DropStale deletes the notifications of channel created before
	// before (a websocket subscription nobody bound).
	DropStale(ctx context.Context, channel string, before time.Time) (int64, error)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
