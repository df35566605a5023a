package site

import (
	"context"
	"time"
)

// AuditLogStatus is what the trust page shows about the tamper-evident
// audit log. Zero values are shown as "not available".
type AuditLogStatus struct {
	Size             uint64    // leaves (audit events) in the log
	Checkpoint       string    // the latest signed checkpoint, as its C2SP signed-note text
	CheckpointTime   time.Time // when it was signed
	VerifierKey      string    // the note verifier key ("name+hash+base64") to check checkpoints with
	LastVerification time.Time // end of the last full verification of the log; zero: never
	// Alarm, when set, says why the server refuses to extend the log:
	// the stored log is smaller than, or does not extend, a checkpoint
	// signed before (rolled back, rewritten) or was tampered with (ADR
	// 0016). Operators see the text; the public page says only that.
	Alarm string
}

// AuditLog is implemented by the Merkle audit log (its own issue).
// TrustStatus returns the current status; an error is logged and the
// section says "not available right now".
type AuditLog interface {
	TrustStatus(ctx context.Context) (AuditLogStatus, error)
}
