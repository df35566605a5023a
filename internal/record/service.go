package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// OrgOwner owns the key of resources outside any patient compartment.
const OrgOwner = ident.Org

// Service is the record. It is safe for concurrent use.
type Service struct {
	store  storage.Store
	keys   *keys.Keyring
	val    *fhir.Validator
	shapes *fhir.Shapes // element cardinalities (FHIRPath Patch)
	reg    *search.Registry
	log    *audit.Log
	batch  *audit.Batcher
	ledger *keys.LedgerKey // commitments of writes (ledger.go); nil refuses writes
	now    func() time.Time
	newID  func() string
	limits fhir.Limits
	logger *slog.Logger
	subset fhir.Subsetter // _summary and _elements (represent.go)

	tamperedMu   sync.Mutex
	tamperedSeen map[string]bool // rows already logged (tampered.go)

	keyMu    sync.Mutex
	keyCache map[ident.Owner]cachedKey
	members  map[ident.Owner][]ident.Owner // joint owner -> its patients (owner_joint.go)

	hook      atomic.Pointer[writeHook]                // SetWriteHook
	eraseHook atomic.Pointer[func(owner string)]       // SetEraseHook
	checks    atomic.Pointer[map[string]ResourceCheck] // SetResourceCheck (subscription.go)
}

// Deps are the Service's collaborators.
type Deps struct {
	Store     storage.Store
	Keys      *keys.Keyring
	Validator *fhir.Validator
	Registry  *search.Registry
	Log       *audit.Log
	Batcher   *audit.Batcher
	Now       func() time.Time
	NewID     func() string
	Limits    fhir.Limits
	// Logger receives what the operator must know (a tampered row,
	// tampered.go); nil discards.
	Logger *slog.Logger

	// Ledger computes the commitments every write's audit event carries
	// (ADR 0016). Without it every write fails (503).
	Ledger *keys.LedgerKey
}

// New returns a Service.
func New(d Deps) *Service {
	svc := &Service{
		store: d.Store, keys: d.Keys, val: d.Validator, reg: d.Registry,
		log: d.Log, batch: d.Batcher, ledger: d.Ledger, now: d.Now, newID: d.NewID, limits: d.Limits, logger: d.Logger,
		keyCache: make(map[ident.Owner]cachedKey), tamperedSeen: make(map[string]bool),
		shapes: &fhir.Shapes{},
	}
	if svc.logger == nil {
		svc.logger = slog.New(slog.DiscardHandler)
	}
	return svc
}

// Registry returns the search-parameter registry (for the capability statement).
func (s *Service) Registry() *search.Registry { return s.reg }

// Caller is who is acting and why; it becomes the audit agent.
//
// Its Guard authorizes every request it makes. There is no implicit
// trust: a Caller without a Guard (the zero value, or a literal that
// forgot it) is refused everything, as undecidable. Trusted offline
// commands that already hold the key file say so explicitly with
// [Offline], the only way to build a guard that allows everything
// (internal/archtest keeps it out of every package that serves requests).
type Caller struct {
	Agent     audit.Agent
	Purpose   string
	RequestID string

	// Guard authorizes the caller's requests: the principal's
	// authz.Bound for a request, [Offline] for trusted offline commands.
	// nil refuses everything.
	Guard Guard

	// SearchAction, when set, is the audit action searches made by this
	// caller are recorded under instead of audit.ActionSearch: a bulk
	// export's searches are disclosures (audit.ActionExport), and each
	// patient's trail says so.
	SearchAction audit.Action
}

// Stored is a resource as stored: its JSON (with meta set) and metadata.
type Stored struct {
	Type        string
	ID          string
	Version     int64
	LastUpdated time.Time
	Deleted     bool
	JSON        []byte
}

// Ref is "Type/id".
func (s Stored) Ref() string { return s.Type + "/" + s.ID }

// idPattern is the FHIR id datatype: [A-Za-z0-9\-\.]{1,64}.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func (s *Service) maxEntries() int {
	if s.limits.MaxEntries > 0 {
		return s.limits.MaxEntries
	}
	return fhir.DefaultMaxEntries
}

// ValidID reports whether id is a valid FHIR logical id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Parse decodes and validates a resource body.
func (s *Service) Parse(body []byte) (fhir.Resource, error) {
	res, err := fhir.Decode(bytes.NewReader(body), s.limits)
	if err != nil {
		return nil, decodeError(err)
	}
	return res, nil
}

func decodeError(err error) error {
	switch {
	case errors.Is(err, fhir.ErrTooLarge):
		return failCause(ErrTooLarge, "too-costly", "the request body is larger than the server accepts", err)
	case errors.Is(err, fhir.ErrTooDeep):
		return failCause(ErrInvalid, "too-costly", "the JSON is nested too deeply", err)
	case errors.Is(err, fhir.ErrUnknownType):
		return failCause(ErrInvalid, "not-supported", "unknown or non-R4 resource type", err)
	default:
		return failCause(ErrInvalid, "structure", "the body is not a valid FHIR JSON resource: "+safeDetail(err), err)
	}
}

// safeDetail returns the message of a fhir package error, which that
// package guarantees never echoes values.
func safeDetail(err error) string {
	var fe interface{ Public() string }
	if errors.As(err, &fe) {
		return fe.Public()
	}
	return "malformed JSON"
}

func (s *Service) validate(res fhir.Resource) error {
	if err := s.val.Validate(res); err != nil {
		var ve *fhir.ValidationError
		if errors.As(err, &ve) {
			e := &Error{Kind: ErrUnprocessable, Err: fmt.Errorf("%w: %w", ErrUnprocessable, err)}
			for i, is := range ve.Issues {
				if i == 20 {
					break
				}
				e.Issues = append(e.Issues, Issue{Code: "invalid", Diagnostic: is.Message, Location: is.Path})
			}
			return e
		}
		if errors.Is(err, fhir.ErrUnknownType) {
			return failCause(ErrInvalid, "not-supported", "unknown or non-R4 resource type", err)
		}
		return failCause(ErrUnprocessable, "invalid", "the resource is not valid FHIR R4", err)
	}
	return s.resourceCheck(res)
}

// dekInTx returns owner's DEK, creating the key in tx if it is new (a
// joint owner's with the patients it stands for). Writes always read
// the key record inside the transaction, so they seal with the current
// primary key even while a rotation runs in another process. create is
// false for reads: a missing key is then an error.
func (s *Service) dekInTx(ctx context.Context, tx storage.Tx, owner ident.Owner, patients []ident.Owner, create bool) (*keys.DEK, error) {
	rec, err := tx.Key(ctx, owner)
	if errors.Is(err, storage.ErrNotFound) && create {
		if strings.HasPrefix(string(owner), JointPrefix) {
			// A new joint key naming an erased patient would hold that
			// patient's information beyond the erasure.
			for _, p := range patients {
				pk, err := tx.Key(ctx, p)
				if err == nil && pk.Shredded {
					return nil, gone("the resource names a patient whose record was erased")
				}
				if err != nil && !errors.Is(err, storage.ErrNotFound) {
					return nil, fmt.Errorf("loading data key: %w", err)
				}
			}
		}
		rec, err = s.keys.NewDEK(owner, s.now())
		if err != nil {
			return nil, fmt.Errorf("creating data key: %w", err)
		}
		if err := tx.PutKey(ctx, rec); err != nil {
			return nil, fmt.Errorf("storing data key: %w", err)
		}
		if strings.HasPrefix(string(owner), JointPrefix) {
			if err := tx.PutJointOwner(ctx, owner, patients); err != nil {
				return nil, fmt.Errorf("storing a joint owner: %w", err)
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("loading data key: %w", err)
	}
	if rec.Shredded {
		return nil, gone("this patient's record was erased")
	}
	return s.keys.DEK(rec)
}

// dekForRead returns owner's DEK through a small record cache. If
// opening fails with a cached record, callers retry with fresh=true
// (the key may have been rotated by another process).
func (s *Service) dekForRead(ctx context.Context, owner ident.Owner, fresh bool) (*keys.DEK, error) {
	s.keyMu.Lock()
	ck, ok := s.keyCache[owner]
	s.keyMu.Unlock()
	rec := ck.rec
	if !ok || fresh || s.now().Sub(ck.loaded) >= keyRecordTTL {
		var err error
		rec, err = s.store.Key(ctx, owner)
		if err != nil {
			return nil, err
		}
		s.keyMu.Lock()
		if len(s.keyCache) >= maxKeyCache {
			clear(s.keyCache)
		}
		s.keyCache[owner] = cachedKey{rec: rec, loaded: s.now()}
		s.keyMu.Unlock()
	}
	if rec.Shredded {
		return nil, keys.ErrShredded
	}
	dek, err := s.keys.DEK(rec)
	if err != nil && ok && !fresh && errors.Is(err, keys.ErrDecrypt) {
		// The cached record may be wrapped under a KEK key that a KEK
		// epoch has since destroyed (ADR 0015): read it afresh.
		return s.dekForRead(ctx, owner, true)
	}
	return dek, err
}

// maxKeyCache bounds the wrapped-key record cache (the unwrapped keys
// have their own bounded cache in the keyring).
const maxKeyCache = 100000

// keyRecordTTL bounds how long a key record is reused without reading
// it again: an erasure by another process of a fleet (a shredded record)
// is honoured here within this time. The unwrapped key itself is cached
// by the wrapped bytes, so a re-read costs one indexed row.
const keyRecordTTL = 5 * time.Second

type cachedKey struct {
	rec    storage.KeyRecord
	loaded time.Time
}

func (s *Service) forgetKey(owner ident.Owner) {
	s.keyMu.Lock()
	delete(s.keyCache, owner)
	s.keyMu.Unlock()
	s.keys.Forget(owner)
}

// open decrypts one stored version.
func (s *Service) open(ctx context.Context, v storage.Version) ([]byte, error) {
	ad := keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: v.Owner}
	for _, fresh := range []bool{false, true} {
		dek, err := s.dekForRead(ctx, v.Owner, fresh)
		if errors.Is(err, keys.ErrShredded) {
			return nil, gone("this patient's record was erased")
		}
		if errors.Is(err, keys.ErrDecrypt) && !s.keys.KEK().IsKMS() {
			// The key record does not open under the key file, even
			// read afresh: tampered, like a row that fails to open (a
			// KMS's failures look the same, so they stay unavailable).
			if fresh {
				return nil, tamperedError(v, err)
			}
			continue
		}
		if err != nil {
			return nil, unavailable(fmt.Errorf("loading key for %s/%s: %w", v.Type, v.ID, err))
		}
		pt, err := dek.Open(v.Ciphertext, ad)
		if err == nil {
			return pt, nil
		}
		if fresh {
			return nil, tamperedError(v, err)
		}
	}
	panic("unreachable")
}

func storedOf(v storage.Version, body []byte) Stored {
	return Stored{Type: v.Type, ID: v.ID, Version: v.Version, LastUpdated: v.LastUpdated, Deleted: v.Deleted, JSON: body}
}

// recordRead makes a read's audit event durable before the caller
// returns PHI. It fails closed.
func (s *Service) recordRead(ctx context.Context, ev audit.Event) error {
	rec, err := s.log.Seal(ev)
	if err != nil {
		return unavailable(err)
	}
	if err := s.batch.Record(ctx, rec); err != nil {
		return unavailable(err)
	}
	return nil
}

// event starts an audit event for c.
func (s *Service) event(c Caller, a audit.Action) audit.Event {
	if a == audit.ActionSearch && c.SearchAction != "" {
		a = c.SearchAction
	}
	return audit.Event{Time: s.now(), Action: a, Outcome: audit.OutcomeSuccess, Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID}
}

func entityRef(typ, id string, version int64) string {
	return typ + "/" + id + "/_history/" + strconv.FormatInt(version, 10)
}

func storageError(err error) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return e
	case errors.Is(err, storage.ErrNotFound):
		return notFound("resource not found")
	case errors.Is(err, storage.ErrErased):
		return gone("this patient's record was erased")
	case errors.Is(err, storage.ErrConflict):
		return failCause(ErrConflict, "conflict", "the resource was changed concurrently; retry", err)
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, audit.ErrUnavailable):
		return unavailable(err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return unavailable(err)
	default:
		return internal(err)
	}
}
