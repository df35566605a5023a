package storage

import (
	"context"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/ident"
)

// Sentinel errors. Drivers translate every driver-specific error into one
// of these (wrapped with the operation that failed), so callers use
// [errors.Is] and never import a SQL driver.
var (
	// ErrNotFound means the resource, version or key does not exist.
	// The FHIR layer answers 404.
	ErrNotFound = errors.New("storage: not found")

	// ErrConflict means a write lost a race or broke a uniqueness rule:
	// the expected current version was not the stored one, or the row
	// already exists. The FHIR layer answers 409 (or 412 for If-Match).
	ErrConflict = errors.New("storage: conflict")

	// ErrUnavailable means the database could not be reached or the
	// transaction could not commit for a reason that may pass (busy,
	// connection lost, serialization failure after retries). Callers
	// answer 503 with a Retry-After header.
	ErrUnavailable = errors.New("storage: unavailable")

	// ErrTooComplex means a Query exceeds one of the limits below
	// (MaxClauses, MaxConds, MaxValues, MaxSorts). The query was not run.
	// The FHIR layer answers 400 with an OperationOutcome asking the
	// client to simplify the search.
	ErrTooComplex = errors.New("storage: query too complex")

	// ErrRetiredKEK means a key record was to be stored wrapped under a
	// KEK key that a KEK epoch has retired (EpochStore): the process's
	// key file is older than the epoch in force. It comes wrapped with
	// ErrUnavailable (the FHIR layer answers 503): the write succeeds
	// once the process has reloaded the new key file. Nothing was written.
	ErrRetiredKEK = errors.New("storage: key wrapped under a retired KEK key")

	// ErrCorrupt means the database failed its integrity check when it
	// was opened (a damaged file, or a copy of a live database taken
	// with cp while it was written). Nothing was served from it: restore
	// a backup.
	ErrCorrupt = errors.New("storage: database is corrupt")

	// ErrErased means a write stored a version for an owner whose key
	// record is shredded (the patient was erased, ADR 0015): nothing was
	// written. The FHIR layer answers 410, as for reads of erased data.
	ErrErased = errors.New("storage: the owner's record was erased")
)

// IntegrityChecker is a store that can run its engine's full integrity
// check ("phivault verify"): nil, or an error wrapping ErrCorrupt that
// names the damage.
type IntegrityChecker interface {
	CheckIntegrity(ctx context.Context) error
}

// Limits on one Query. Search is driven by untrusted input, so the work
// one request can ask of the database is bounded: every condition is a
// subquery and every value a bound parameter (SQLite allows 32766
// parameters per statement, PostgreSQL 65535).
const (
	MaxClauses = 32   // clauses (AND terms) per query
	MaxConds   = 128  // conditions (OR terms) summed over all clauses
	MaxValues  = 1024 // hashes and ids summed over all conditions
	MaxSorts   = 8    // sort keys

	// MaxOwners bounds the owners summed over all CondOwner conditions
	// (authorization narrowing: the patients a caller may see). Well
	// under both drivers' bound-parameter limits.
	MaxOwners = 20000
)

// Version is one stored version of a resource. Nothing in it is PHI in
// plaintext: the body is ciphertext sealed with the owner's key, and the
// type, id and owner are pseudonymous.
type Version struct {
	Type    string // FHIR resource type, e.g. "Observation"
	ID      string // logical id
	Version int64  // 1, 2, 3, ...

	// Owner names the data-encryption key that sealed Ciphertext:
	// "Patient/<id>" for resources in one patient's compartment,
	// "Joint/<h>" for resources naming several patients (a key of their
	// own, whose patients JointMembers lists), "org" for the rest.
	// Crypto-shredding a patient destroys that owner's key and every
	// joint key naming it.
	Owner ident.Owner

	Ciphertext  []byte    // nil for a delete marker
	LastUpdated time.Time // UTC, microsecond precision
	Deleted     bool      // a delete marker: the resource is gone, history kept
}

// IndexRow is one search-index entry for the current version of a
// resource. Token, string and reference values are stored only as keyed
// hashes (Hash); dates as a UTC range [Lo, Hi] in microseconds since the
// Unix epoch. Exactly one of Hash or the range is set.
type IndexRow struct {
	Param  string // search parameter code, e.g. "code", "name:prefix"
	Hash   []byte // keyed hash of the normalised value (blind index)
	Lo     int64  // date range start, unix microseconds (inclusive)
	Hi     int64  // date range end, unix microseconds (inclusive)
	IsDate bool   // true when Lo/Hi are set rather than Hash
}

// KeyRecord is one owner's wrapped data-encryption key.
type KeyRecord struct {
	Owner    ident.Owner // "Patient/<id>", "Joint/<h>", "org" or a system key ("system/<name>")
	Wrapped  []byte      // the DEK keyset encrypted under the KEK; nil once shredded
	KEKID    uint32      // the KEK key id that wrapped it (for resumable rotation)
	Created  time.Time
	Shredded bool
	// Ledger is the owner's ledger secret sealed under the DEK (ADR 0016,
	// amendment): the key of the owner's ledger commitments, destroyed
	// with the DEK. nil for system keys and for records made before it
	// (ReplaceKey then keeps the stored one).
	Ledger []byte
}

// Store is the whole persistence layer. Implementations are safe for
// concurrent use by many goroutines and, for PostgreSQL, by several
// processes on one database.
type Store interface {
	Reader

	// Update runs fn in one write transaction and commits it if fn
	// returns nil. If the transaction loses a race that a retry can win
	// (serialization failure, deadlock, a concurrent insert of the same
	// key), Update rolls back and calls fn again, up to a small bound;
	// fn must therefore have no side effects outside tx. An error from
	// fn is returned unchanged after rollback.
	Update(ctx context.Context, fn func(tx Tx) error) error

	// AppendAudit durably appends audit records in one transaction (the
	// read-audit batcher calls it with many records at once). It returns
	// only after the commit is durable.
	AppendAudit(ctx context.Context, recs ...AuditRecord) error

	// Close releases the connections. It does not block on running
	// transactions beyond the context of their calls.
	Close() error
}

// Reader is the read-only capability, safe to hand to code that must
// never write.
type Reader interface {
	// Current returns the current version (possibly a delete marker) of
	// type/id, or ErrNotFound.
	Current(ctx context.Context, typ, id string) (Version, error)

	// VersionOf returns one version, or ErrNotFound.
	VersionOf(ctx context.Context, typ, id string, version int64) (Version, error)

	// History lists versions newest first, filtered by q.
	History(ctx context.Context, q HistoryQuery) ([]Version, error)

	// Search returns the current, non-deleted versions that match q, in
	// q.Sort order, and the total count when q.Total is set.
	Search(ctx context.Context, q Query) (Result, error)

	// Key returns the key record of owner, or ErrNotFound.
	Key(ctx context.Context, owner ident.Owner) (KeyRecord, error)

	// ScanVersions calls fn for every stored version of every resource
	// (all versions, delete markers included), in (type, id, version)
	// order, starting strictly after the given position (empty = from
	// the start). It stops at the first error from fn and returns it.
	// Used by verify and key rotation; it streams and holds no
	// transaction open for longer than a batch.
	ScanVersions(ctx context.Context, after VersionRef, fn func(Version) error) error

	// ScanKeys calls fn for every key record in owner order.
	ScanKeys(ctx context.Context, fn func(KeyRecord) error) error

	// ScanAudit calls fn for every audit record still in audit_events
	// (not yet integrated: the integrator moves records into entry
	// bundles, storage.LogReader) with sequence number greater than
	// after, in sequence order.
	ScanAudit(ctx context.Context, after int64, fn func(seq int64, rec AuditRecord) error) error

	// Owned returns up to limit current, non-deleted versions whose
	// Owner is one of owners (at most MaxOwners), in (type, id) order,
	// strictly after the given position (empty = from the start).
	// Patient/$everything pages with it.
	Owned(ctx context.Context, owners []ident.Owner, after VersionRef, limit int) ([]Version, error)

	// JointMembers returns the patients a joint owner ("Joint/<h>")
	// stands for, sorted; ErrNotFound for an unknown one.
	JointMembers(ctx context.Context, owner ident.Owner) ([]ident.Owner, error)

	// JointOwners returns the joint owners naming any of patients (at
	// most MaxOwners; up to limit owners), each with all its patients.
	JointOwners(ctx context.Context, patients []ident.Owner, limit int) (map[ident.Owner][]ident.Owner, error)

	// ScanJointOwners calls fn for every joint owner that has a key
	// record or joint_owners rows, in no particular order: its patients
	// as recorded (sorted) and its key record's state. Erasures and
	// "phivault verify" check the patients against the owner's name.
	ScanJointOwners(ctx context.Context, fn func(JointOwner) error) error

	// TokenByHash returns the API token with this hash, or ErrNotFound.
	TokenByHash(ctx context.Context, hash []byte) (APIToken, error)

	// Counts returns the number of current, non-deleted resources per type.
	Counts(ctx context.Context) (map[string]int64, error)

	// Types returns every resource type that has a stored resource,
	// deleted ones included, sorted.
	Types(ctx context.Context) ([]string, error)
}

// JointPrefix starts a joint owner: "Joint/<h>", the key owner of a
// resource that names several patients (ident.JointPrefix).
const JointPrefix = ident.JointPrefix

// JointOwner is one joint owner as stored (ScanJointOwners).
type JointOwner struct {
	Owner    ident.Owner
	Members  []ident.Owner // the joint_owners rows, sorted; none when all were deleted
	HasKey   bool          // a key record exists
	Shredded bool          // and it was shredded
}

// VersionRef names one version.
type VersionRef struct {
	Type    string
	ID      string
	Version int64
}

// Tx is a write transaction. It is not safe for concurrent use.
type Tx interface {
	// Current, VersionOf, Search and Key read inside the transaction and
	// see its own writes. Key holds a lock of the owner (shared) until
	// commit on engines with several writers: a concurrent Shred of the
	// owner waits for this transaction.
	Current(ctx context.Context, typ, id string) (Version, error)
	VersionOf(ctx context.Context, typ, id string, version int64) (Version, error)
	Search(ctx context.Context, q Query) (Result, error)
	Key(ctx context.Context, owner ident.Owner) (KeyRecord, error)

	// Put stores v as the new current version of v.Type/v.ID and
	// replaces that resource's index rows with index. v.Version must be
	// exactly one more than the stored current version (1 for a new
	// resource); otherwise Put returns ErrConflict and writes nothing.
	// A delete marker (v.Deleted) is not searchable: its index is
	// ignored and the resource's index rows are removed. Type, ID, Owner
	// and Param must be valid UTF-8 without NUL bytes (PostgreSQL text
	// cannot hold them); hashes and ciphertext are arbitrary bytes.
	// A version for an owner whose key record is shredded is refused
	// with ErrErased; on engines with several writers the check holds
	// a lock of the owner (shared) until commit, so an erasure (Shred)
	// waits for the transaction and then erases what it wrote.
	Put(ctx context.Context, v Version, index []IndexRow) error

	// ReplaceIndex replaces the index rows of type/id, whose current
	// version must be version (else ErrConflict: a newer write indexed
	// it already; ErrNotFound if there is none). A delete marker keeps
	// no rows. Reindexing uses it when the index gains parameters.
	ReplaceIndex(ctx context.Context, typ, id string, version int64, index []IndexRow) error

	// PutKey inserts a new key record; ErrConflict if owner exists.
	// A record whose KEKID a KEK epoch retired is refused with an error
	// wrapping ErrRetiredKEK and ErrUnavailable (see EpochStore).
	PutKey(ctx context.Context, k KeyRecord) error

	// ReplaceKey overwrites owner's wrapped key and KEKID (rotation),
	// or ErrNotFound. It returns ErrConflict for a shredded key: a
	// destroyed key is never revived. A retired KEKID is refused as by
	// PutKey.
	ReplaceKey(ctx context.Context, k KeyRecord) error

	// RewriteCiphertext replaces the ciphertext of one stored version
	// in place (DEK rotation re-encrypts old versions); ErrNotFound if
	// the version does not exist.
	RewriteCiphertext(ctx context.Context, ref VersionRef, ciphertext []byte) error

	// Shred crypto-shreds owner: it destroys the wrapped key (keeps the
	// record, Shredded=true), deletes the index rows of every resource
	// whose Owner is owner, and marks those resources deleted by
	// appending a delete marker version (history stays), and empties
	// (NULL) the ciphertext of every version owner sealed, so a process
	// still caching the key finds nothing to decrypt. For a patient it
	// does the same to every joint owner naming the patient. It returns
	// how many resources it erased; resources already deleted are not
	// counted, so a second Shred returns 0. The records keep their KEKID:
	// the KEK key that last wrapped the destroyed key, which the KEK
	// epoch job reads to know that erasure is not final until that key
	// is destroyed (ADR 0015).
	Shred(ctx context.Context, owner ident.Owner) (int64, error)

	// Reown moves one stored version to another key owner with its
	// ciphertext re-sealed for it (reindex: a resource that names several
	// patients, stored before joint owners, leaves the organisation's
	// key). The resource's current owner follows when ref is its current
	// version. ErrNotFound if the version does not exist.
	Reown(ctx context.Context, ref VersionRef, owner ident.Owner, ciphertext []byte) error

	// PutJointOwner records the patients (2 to 1,000, sorted) a joint
	// owner stands for. Recording the same again is a no-op.
	PutJointOwner(ctx context.Context, owner ident.Owner, patients []ident.Owner) error

	// JointMembers is Reader.JointMembers inside the transaction.
	JointMembers(ctx context.Context, owner ident.Owner) ([]ident.Owner, error)

	// JointOwnersOf returns the joint owners naming patient, sorted: the
	// keys Shred(patient) destroys with the patient's own.
	JointOwnersOf(ctx context.Context, patient ident.Owner) ([]ident.Owner, error)

	// SetLedgerSecret stores sealed as owner's ledger secret if its
	// live key record has none, and reports whether it did (false: a
	// concurrent transaction set one first; read the record again).
	SetLedgerSecret(ctx context.Context, owner ident.Owner, sealed []byte) (bool, error)

	// ShredOwner crypto-shreds owner alone, as Shred does, without the
	// joint owners joint_owners lists for a patient: an erasure that
	// found its joint owners from authenticated data shreds each of them.
	ShredOwner(ctx context.Context, owner ident.Owner) (int64, error)

	// PutToken stores a new API token; ErrConflict if the id exists.
	PutToken(ctx context.Context, t APIToken) error

	// AppendAudit adds audit records in this transaction, so a write and
	// its audit event commit or fail together.
	AppendAudit(ctx context.Context, recs ...AuditRecord) error

	// Lock takes a transaction-scoped lock on name, serialising
	// conditional creates (If-None-Exist) across processes. A no-op on
	// drivers with a single writer.
	Lock(ctx context.Context, name string) error
}

// HistoryQuery selects versions for _history.
type HistoryQuery struct {
	Type   string    // "" = every type (system history)
	ID     string    // "" = every resource of Type
	Since  time.Time // zero = no lower bound; else LastUpdated >= Since (FHIR _since: "at or after")
	Count  int       // maximum rows; must be > 0
	Offset int

	// AtFrom and AtTo, when AtTo is set, keep only versions that were
	// current at some time in [AtFrom, AtTo] (FHIR _at): written at or
	// before AtTo, and not replaced by a later version written at or
	// before AtFrom. Delete markers count as versions.
	AtFrom, AtTo time.Time

	// Owners, when set, keeps only versions whose Owner is in Owners.In
	// (or, with Except, is not): authorization narrowing. At most
	// MaxOwners owners.
	Owners *OwnerSet

	// Current, when set (with Type), keeps only versions whose
	// resource's current version matches these clauses (as Query.Clauses
	// do, deleted current versions included): authorization narrowing
	// decided on the current version's owner and labels.
	Current []Clause
}

// OwnerSet is a set of owners ("Patient/<id>", "org"), or its complement.
type OwnerSet struct {
	In     []ident.Owner
	Except bool
}

// Query is a search already translated into index terms: the FHIR layer
// parses parameters and computes the hashes; the store only matches.
type Query struct {
	Type string // required

	// All clauses must match (AND). Each clause matches when any of its
	// conditions matches (OR), as FHIR defines repeated and
	// comma-separated parameter values.
	Clauses []Clause

	Sort   []Sort
	Count  int // page size; 0 means "count only" when Total is set
	Offset int
	Total  bool // also count all matches
}

// Clause is a disjunction of conditions.
type Clause struct {
	Any []Cond
}

// CondKind says which field of a Cond is used.
type CondKind int

const (
	// CondHash matches index rows of Param whose Hash equals one of Hashes.
	CondHash CondKind = iota + 1
	// CondDate matches index rows of Param whose range satisfies Op
	// against [Lo, Hi].
	CondDate
	// CondID matches resources whose logical id is one of IDs.
	CondID
	// CondLastUpdated matches the resource's LastUpdated (as a range
	// [Lo, Hi] in unix microseconds) by Op.
	CondLastUpdated
	// CondMissing matches resources with (Missing=true) or without any
	// index row for Param.
	CondMissing
	// CondOwner matches resources whose Owner is one of Owners
	// ("Patient/<id>" or "org"). Authorization adds these conditions
	// (search narrowing); their values count against MaxOwners, not
	// MaxValues.
	CondOwner
	// CondAll matches resources that satisfy every condition of All
	// (each a CondHash, CondDate or CondMissing; no nesting). Negate
	// inverts the conjunction as a whole. Its conditions count against
	// MaxConds. Search answers a composite over a resource's single
	// repetition with it (ADR 0042).
	CondAll
)

// DateOp is a FHIR date comparison prefix.
type DateOp string

const (
	OpEq DateOp = "eq" // resource range within [Lo, Hi]
	OpNe DateOp = "ne" // not eq
	OpGt DateOp = "gt" // resource Hi > search Hi
	OpLt DateOp = "lt" // resource Lo < search Lo
	OpGe DateOp = "ge" // resource Hi >= search Lo
	OpLe DateOp = "le" // resource Lo <= search Hi
	OpSa DateOp = "sa" // resource Lo > search Hi (starts after)
	OpEb DateOp = "eb" // resource Hi < search Lo (ends before)
	// OpAp: the resource range overlaps [Lo, Hi]. The search layer
	// widens the query range first (FHIR's "approximately").
	OpAp DateOp = "ap"
)

// Cond is one condition. Negate inverts it (the :not modifier): the
// resource matches when no index row of Param satisfies the condition.
type Cond struct {
	Kind    CondKind
	Param   string
	Hashes  [][]byte
	Op      DateOp
	Lo, Hi  int64
	IDs     []string
	Owners  []ident.Owner
	Missing bool
	Negate  bool
	// Authz marks a CondID added by authorization narrowing (the ids of
	// resources decided one by one): its IDs count against MaxOwners,
	// not MaxValues.
	Authz bool
	// All are the conditions of a CondAll.
	All []Cond
}

// SortKey names what to sort on.
type SortKey int

const (
	SortLastUpdated SortKey = iota + 1
	SortID
	SortDate // by the earliest Lo of index rows of Param
)

// Sort is one sort key.
type Sort struct {
	Key   SortKey
	Param string // for SortDate
	Desc  bool
}

// Result is one page of search matches.
type Result struct {
	Versions []Version
	Total    int64 // set when Query.Total was set, else -1
}

// AuditRecord is one sealed audit event. The body is ciphertext under the
// log key; the store sequences records in commit order.
type AuditRecord struct {
	Time time.Time
	Body []byte
	// LeafHash is the RFC 6962 leaf hash of the event's Merkle tree leaf
	// (see package audit), stored at sequencing so the log integrator
	// needs no decryption. Nil for records sealed before the tree existed.
	LeafHash []byte
}

// APIToken is a stored bearer token: only a hash of the secret.
type APIToken struct {
	ID   string
	Name string
	Hash []byte
	// HashKind is how Hash was made: [HashHMAC] (a keyed hash, every
	// token created since ADR 0022) or [HashSHA256] (plain SHA-256, only
	// tokens created before it).
	HashKind string
	Roles    []string
	Created  time.Time
	Revoked  bool
}

// Lookup hash kinds of stored secrets (ADR 0022).
const (
	HashHMAC   = "hmac"
	HashSHA256 = "sha256"
)
