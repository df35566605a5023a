// Package subscription delivers FHIR R4 Subscriptions (criteria = a
// search string, channels rest-hook and websocket; ADR 0030).
//
// # How a change reaches a subscriber
//
// The change feed is the audit log: every committed write leaves its
// audit event in its own transaction, and the integrated log gives each
// a leaf index once, after commit, without gaps. A [Service] follows the
// log through a durable cursor (audit_export_cursors, "subscriptions"),
// as the SIEM exporters do, so every process of a PostgreSQL fleet sees
// every write in one order, and a restart resumes where the cursor
// stands. For each write it enqueues a notification per active
// subscription whose criteria search that resource type (a row keyed by
// subscription and change: enqueuing twice is harmless). The record's
// write hook wakes the loop ([Service.Wake]) to cut the latency to a
// round.
//
// Notifications are leased one at a time by a conditional update (one
// process delivers each), and deleted once settled. Delivery is at least
// once: a process that dies after sending and before settling leaves the
// lease to run out, and another sends again; every attempt carries the
// same X-Phivault-Notification-Id so a receiver can drop a repeat. A
// failed attempt is retried with exponential backoff and jitter; after
// MaxAttempts the subscription's status becomes error, with a fixed
// error text.
//
// # Security invariants
//
//   - A notification is sent only if the criteria, run as a search by the
//     subscription's owner restricted to the changed resource's id
//     (record.Service.Search with _id), match it: the owner's narrowing,
//     consents and sensitivity labels decide, as for any search they
//     make, and that search is audited as theirs before anything leaves.
//     A change the owner may not read yields no notification, no ping
//     and no status change.
//   - The owner is the principal of the Subscription's latest write,
//     read from that write's audit event (server-side, in the write's
//     transaction; never from the resource). Whoever rewrites a
//     Subscription (another endpoint, other criteria) makes it theirs.
//     Only API tokens and signed-in accounts can own one; anything else
//     puts it in error. The owner is re-resolved at every delivery: a
//     disabled or removed account, or a revoked token, stops it (error),
//     and role and care-team changes apply.
//   - Rest-hook endpoints are https (http to loopback only when the
//     policy allows, for tests); every address dialled is checked as
//     dialled (net.Dialer Control, after resolution): loopback, private,
//     link-local and metadata addresses are refused unless configured,
//     metadata always. No proxy, no redirects, a timeout, bounded reads.
//   - Each delivery is audited ([ActionNotify]): the subscription, the
//     resource, the channel and the endpoint's host, the outcome.
//   - Error texts and logs name subscriptions and kinds of failure,
//     never criteria values, endpoints' paths, headers or content.
//   - A websocket client binds only subscriptions its principal owns;
//     any other bind gets the same refusal.
package subscription
