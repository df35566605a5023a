package ledger

import "fmt"

// Kind names what differs between the database and the log. The values
// are stable: operators and tests match them.
type Kind string

// Problem kinds.
const (
	// KindMissingResource: the log committed versions of a resource of
	// which nothing is stored (its rows were deleted).
	KindMissingResource Kind = "missing-resource"
	// KindMissingVersion: a committed version's row is missing, or a
	// version number is skipped.
	KindMissingVersion Kind = "missing-version"
	// KindRollback: the newest versions the log committed are missing and
	// the current pointer names an older one: the server serves the past.
	KindRollback Kind = "rollback"
	// KindRepointed: the current pointer names another version than the
	// newest one, which is stored.
	KindRepointed Kind = "repointed"
	// KindCurrentRow: the current pointer row is missing or differs from
	// the version row it names.
	KindCurrentRow Kind = "current-row"
	// KindContent: a version row (owner, deletion flag, time or body)
	// differs from what the log committed.
	KindContent Kind = "content"
	// KindCiphertext: a ciphertext fails authentication (altered, moved
	// or copied from another row), or its plaintext names another
	// resource or version.
	KindCiphertext Kind = "ciphertext"
	// KindIndex: a resource's index rows differ from the ones the log
	// committed (a blind-index row added, removed or repointed), or a
	// deleted resource still has index rows.
	KindIndex Kind = "index"
	// KindForgedMarker: a delete marker no event committed to and no
	// erasure explains.
	KindForgedMarker Kind = "forged-marker"
	// KindForgedErasure: a data key destroyed without an erasure in the
	// log.
	KindForgedErasure Kind = "forged-erasure"
	// KindErasure: an erasure in the log whose effect is not stored: the
	// key is live again, or a resource it covered has no delete marker.
	KindErasure Kind = "erasure"
	// KindUncommitted: a version written after the ledger started that
	// no event commits to: a forged row, or a write whose audit event was
	// deleted before it was integrated into the tree.
	KindUncommitted Kind = "uncommitted"
	// KindKey: a data key is missing or does not unwrap.
	KindKey Kind = "key"
	// KindLedgerKey: the ledger key is not the one the log started with
	// (its record was replaced): commitments cannot be compared.
	KindLedgerKey Kind = "ledger-key"
	// KindLog: an event's ledger data is malformed, or the ledger's
	// start event is missing.
	KindLog Kind = "log"
	// KindUnsettled: a resource that looked wrong kept changing while
	// the check reread it (written to all along): not judged.
	KindUnsettled Kind = "unsettled"
	// KindJointOwner: the patients joint_owners lists for a joint owner
	// are not the ones its name commits to (a row deleted, added or
	// changed), or rows name an owner that has no key.
	KindJointOwner Kind = "joint-owner"
)

// Add appends p to the report's problems (counted in More beyond
// MaxProblems).
func (r *Report) Add(p Problem) {
	if len(r.Problems) >= MaxProblems {
		r.More++
		return
	}
	r.Problems = append(r.Problems, p)
}

// Problem is one difference, named by reference (no content).
type Problem struct {
	Ref    string // "Type/id/_history/v", "Type/id", or a key owner
	Kind   Kind
	Detail string
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %s", p.Ref, p.Kind, p.Detail) }

// Report sums up a check.
type Report struct {
	Resources int64 // resources examined (current pointers, or versions without one)
	Versions  int64 // version rows examined
	Verified  int64 // version rows equal to their commitment (sealed versions opened)
	Deleted   int64 // delete markers committed or explained by an erasure
	Erased    int64 // versions of erased owners: unreadable by design, only their metadata checked
	PreLedger int64 // versions not committed: written before ledger v1
	Commits   int64 // commitments read from the log
	Baselined int64 // baseline mode: commitments appended
	Problems  []Problem
	// More counts the problems beyond MaxProblems, which are not listed.
	More int64
}

// MaxProblems bounds the problems a Report lists.
const MaxProblems = 1000
