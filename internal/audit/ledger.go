package audit

import "bytes"

// The ledger (ADR 0016): every event that changes stored resources
// carries, in [Event.Ledger], commitments to what it stored, so the
// database can be checked against the signed log ("phivault verify").
// A commitment is a keyed hash (keys.LedgerKey) of the version row and
// its plaintext, or of a resource's index rows: it reveals nothing about
// the content to a reader of the log.

// CommitKind says what a [Commit] commits to.
type CommitKind string

// Commit kinds.
const (
	// CommitPut is a version stored (create, update, delete marker,
	// every entry of a Bundle, imports): Version always, Index for a
	// version that is not a delete marker (its index rows replaced the
	// resource's).
	CommitPut CommitKind = "put"
	// CommitIndex is the index rows of a resource's current version
	// replaced without a new version (reindex): Index only.
	CommitIndex CommitKind = "index"
	// CommitRewrite is a stored version rewritten in place (a new owner
	// or ciphertext; same type, id and version): Version, and Index when
	// it is the current version.
	CommitRewrite CommitKind = "rewrite"
	// CommitErase is an owner's data key destroyed ($erase): Ref is the
	// owner; every resource whose current version it owned and that was
	// not deleted got a delete marker (the next version) in the same
	// transaction, and lost its index rows.
	CommitErase CommitKind = "erase"
	// CommitStart is the first event of the ledger: Version holds the
	// ledger key's check value. Versions stored before it carry no
	// commitment ("written before ledger v1").
	CommitStart CommitKind = "start"
	// CommitBaseline commits a version stored before the ledger
	// started, as found ("phivault verify --baseline"); like CommitPut.
	CommitBaseline CommitKind = "baseline"
	// CommitBaselineDone ends a complete baseline: from it on, every
	// stored version must have a commitment.
	CommitBaselineDone CommitKind = "baseline-done"
)

// Commit is one ledger commitment. It holds references, pseudonymous
// owners and keyed hashes only.
type Commit struct {
	Kind    CommitKind `json:"kind"`
	Ref     string     `json:"ref,omitempty"`     // "Type/id/_history/v"; the owner for CommitErase
	Owner   string     `json:"owner,omitempty"`   // the version's key owner ("Patient/<id>", "org", ...)
	Deleted bool       `json:"deleted,omitempty"` // the version is a delete marker
	Version []byte     `json:"v,omitempty"`       // commitment to the version (keys.LedgerKey.Version)
	Index   []byte     `json:"i,omitempty"`       // commitment to the index rows (keys.LedgerKey.Index)
	// Scheme says how Version and Index were keyed: 0 (absent) the
	// system ledger key, as every commitment before ledger v2;
	// CommitSchemeOwner the owner's ledger key over that (keys.OwnerLedger),
	// so it confirms nothing once the owner is erased.
	Scheme int `json:"scheme,omitempty"`
}

// CommitSchemeOwner marks a commitment keyed with its owner's ledger key.
const CommitSchemeOwner = 2

// Ledger actions: events whose only purpose is the ledger.
const (
	// ActionLedgerStart opens the ledger (CommitStart), once per
	// database, when a version with the ledger first opens it.
	ActionLedgerStart Action = "ledger-start"
	// ActionLedgerBaseline commits versions stored before the ledger
	// started (CommitBaseline, then CommitBaselineDone).
	ActionLedgerBaseline Action = "ledger-baseline"
	// ActionLedgerRewrite commits versions rewritten in place
	// (CommitRewrite) by a maintenance job; Policies names the job.
	ActionLedgerRewrite Action = "ledger-rewrite"
)

// MaxCommitsPerEvent bounds the commitments one event carries: each is
// at most about 320 bytes of JSON (a 64-character id, two 44-character
// hashes), and a leaf must stay under 64 KiB (an entry bundle's length
// prefix). Jobs that commit more split them over events.
const MaxCommitsPerEvent = 150

// Byte patterns of the canonical encoding (Event.Marshal) that a
// ledger reader looks for before decoding a leaf: most events are reads
// and carry neither.
var (
	ledgerField = []byte(`"ledger":[`)
	eraseAction = []byte(`"action":"$erase"`)
)

// MayCarryLedger reports whether the canonical event bytes ev may hold
// ledger commitments or be an erasure (which, before ledger v1, held
// none): a cheap filter before decoding. False means certainly not.
func MayCarryLedger(ev []byte) bool {
	return bytes.Contains(ev, ledgerField) || bytes.Contains(ev, eraseAction)
}
