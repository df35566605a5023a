// Package export streams the audit trail to a security information and
// event management system (SIEM): a JSON-lines file, syslog (RFC 5424
// messages over TCP+TLS with RFC 5425 octet-counting framing) or a
// webhook signed per the Standard Webhooks specification (HMAC-SHA256).
//
// # Delivery
//
// An [Exporter] reads the log through a durable cursor, in Merkle leaf
// order (the order of the published log): it opens and decodes the
// leaves from the cursor on, removes the fields its
// [Redaction] names, hands the batch to its [Sink], and advances the
// cursor only after the sink has accepted the whole batch. A slow or
// failing sink therefore loses nothing: the exporter retries the same
// batch with backoff, and a restart resumes at the cursor. Delivery is
// at least once (a crash between a sink's acceptance and the cursor
// update repeats that batch); every record carries its sequence number
// ("index", its leaf index; "seq", its sequence number) and the webhook
// a stable webhook-id, so a receiver can drop a repeat. Events reach the
// sinks once integrated into the tree, within about a second.
//
// # Security invariants
//
//   - Records leave only after they are opened with the log key and
//     redacted; the sealed bodies never leave.
//   - Sinks are authenticated: syslog only over TLS with a verified
//     server certificate, webhooks only over https (loopback excepted for
//     tests and local collectors) and signed with a shared secret that is
//     never logged.
//   - Errors name the sink and the sequence numbers, never an event field.
package export
