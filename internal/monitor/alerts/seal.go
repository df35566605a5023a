package alerts

import (
	"context"
	"strconv"
)

// Sealing (ADR 0046): monitoring data is sealed with the audit log key
// (keys.Keyring.SealAudit, AES-256-GCM through Tink), bound to a context
// naming the table, the row and the field, so that no sealed value can
// be moved to another row or read as an audit event (whose contexts are
// "phivault/audit-event/..."). Why the audit key and not a data key:
//
//   - monitoring data is derived from access logs and kept like them: a
//     patient's erasure keeps the audit trail (DESIGN §6), and so keeps
//     the alerts about accesses to that patient;
//   - DEK rotation ("phivault keys rotate") re-seals resource versions
//     and then destroys the old keys of every data owner, "org"
//     included: rows sealed under the organisation's key outside the
//     resources table would become unreadable. The audit key is never
//     retired; a KEK rotation rewraps it with every key.

// AuditSealer is what [KeySealer] needs of keys.Keyring.
type AuditSealer interface {
	SealAudit(context string, body []byte) ([]byte, error)
	OpenAudit(context string, ciphertext []byte) ([]byte, error)
}

// KeySealer is the [Sealer] of the application: the audit log key.
type KeySealer struct{ Keys AuditSealer }

var _ Sealer = KeySealer{}

// sealContext binds a sealed value to its kind, row and field.
func sealContext(kind, id string, part int64) string {
	return "phivault/monitor/" + kind + "/" + strconv.FormatInt(part, 10) + "/" + id
}

// Seal implements Sealer.
func (s KeySealer) Seal(_ context.Context, kind, id string, part int64, text []byte) ([]byte, error) {
	return s.Keys.SealAudit(sealContext(kind, id, part), text)
}

// Open implements Sealer.
func (s KeySealer) Open(_ context.Context, kind, id string, part int64, sealed []byte) ([]byte, error) {
	return s.Keys.OpenAudit(sealContext(kind, id, part), sealed)
}
