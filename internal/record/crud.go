package record

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Read returns the current version of typ/id: ErrNotFound, or ErrGone
// if it was deleted.
func (s *Service) Read(ctx context.Context, c Caller, typ, id string) (Stored, error) {
	v, err := s.store.Current(ctx, typ, id)
	if missing(err) {
		return Stored{}, s.recordMiss(ctx, c, audit.ActionRead, typ+"/"+id, storageError(err))
	}
	if err != nil {
		return Stored{}, storageError(err)
	}
	return s.readVersion(ctx, c, audit.ActionRead, v)
}

// VRead returns one version of typ/id.
func (s *Service) VRead(ctx context.Context, c Caller, typ, id string, version int64) (Stored, error) {
	v, err := s.store.VersionOf(ctx, typ, id, version)
	if missing(err) {
		return Stored{}, s.recordMiss(ctx, c, audit.ActionVRead, entityRef(typ, id, version), storageError(err))
	}
	if err != nil {
		return Stored{}, storageError(err)
	}
	// An old version is decided on the current one too: a resource
	// labelled sensitive (or moved to another compartment) since must
	// not be read through its history.
	if cur, err := s.store.Current(ctx, typ, id); err == nil && cur.Version != v.Version {
		if err := s.decideOnCurrent(ctx, c, audit.ActionVRead, cur); err != nil {
			return Stored{}, err
		}
	}
	return s.readVersion(ctx, c, audit.ActionVRead, v)
}

func (s *Service) readVersion(ctx context.Context, c Caller, a audit.Action, v storage.Version) (Stored, error) {
	if v.Deleted {
		body, err := s.decisionBody(ctx, s.store, v)
		if err != nil {
			return Stored{}, err
		}
		if _, err := s.check(ctx, c, a, v, body); err != nil {
			return Stored{}, s.recordDenial(ctx, err)
		}
		return storedOf(v, nil), gone("the resource was deleted")
	}
	body, err := s.open(ctx, v)
	if err != nil {
		return Stored{}, err
	}
	d, err := s.check(ctx, c, a, v, body)
	if err != nil {
		return Stored{}, s.recordDenial(ctx, err)
	}
	if d.Mask {
		if body, err = authz.Redact(body); err != nil {
			return Stored{}, s.recordDenial(ctx, s.denial(c, a, v, authz.Decision{Policies: []string{"undecidable"}}, err))
		}
	}
	base := s.event(c, a)
	base.Policies = d.Policies
	evs := newEvents(base)
	evs.add(d, entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner))
	if err := s.recordReads(ctx, evs.list()...); err != nil {
		return Stored{}, err
	}
	return storedOf(v, body), nil
}

// Create stores res as a new resource with a server-assigned id. With a
// non-empty ifNoneExist query it is a conditional create: if exactly one
// resource matches, that one is returned with created=false; if several
// match, ErrPreconditionFailed.
func (s *Service) Create(ctx context.Context, c Caller, res fhir.Resource, ifNoneExist string) (st Stored, created bool, err error) {
	if err := s.validate(res); err != nil {
		return Stored{}, false, err
	}
	res.SetID(s.newID())
	var cond *storage.Query
	if ifNoneExist != "" {
		q, err := s.conditionQuery(ctx, c, s.store, res.Type(), ifNoneExist)
		if err != nil {
			return Stored{}, false, s.recordDenial(ctx, err)
		}
		cond = &q
	}
	// Encoding and indexing happen before the transaction, so concurrent
	// creates do that work in parallel.
	p, err := s.prepareVersion(ctx, nil, res, 1, s.now())
	if err != nil {
		return Stored{}, false, err
	}
	d, err := s.check(ctx, c, audit.ActionCreate, storage.Version{Type: p.v.Type, Owner: p.v.Owner}, p.body)
	if err != nil {
		return Stored{}, false, s.recordDenial(ctx, err)
	}
	var existing storage.Version
	err = s.updateTx(ctx, c, func(ctx context.Context, tx storage.Tx) error {
		existing = storage.Version{}
		if cond != nil {
			v, found, err := s.matchOne(ctx, tx, *cond)
			if err != nil {
				return err
			}
			if found {
				existing = v
				return nil
			}
		}
		v, err := s.storeVersion(ctx, tx, p)
		if err != nil {
			return err
		}
		st = storedOf(v, nil)
		return s.appendWriteEvent(ctx, tx, c, audit.ActionCreate, v, d, p)
	})
	if err != nil {
		return Stored{}, false, storageError(err)
	}
	s.changed(p.v.Type, p.v.Owner)
	if existing.ID != "" {
		st, err := s.readVersion(ctx, c, audit.ActionRead, existing)
		return st, false, err
	}
	st.JSON = p.body
	return st, true, nil
}

// conditionQuery parses a conditional-operation query (If-None-Exist,
// conditional references) into a storage query matching at most two.
//
// The caller's search narrowing applies: a conditional operation cannot
// match (and so reveal) what the caller may not see.
func (s *Service) conditionQuery(ctx context.Context, c Caller, rd keyedReader, typ, rawQuery string) (storage.Query, error) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return storage.Query{}, invalid("the conditional query is not a valid query string")
	}
	p, err := s.parseSearch(typ, vals, false)
	if err != nil {
		return storage.Query{}, err
	}
	if q := p.parsed; len(q.Chains) > 0 || len(q.Include) > 0 || len(q.RevInclude) > 0 {
		// A chain would run searches inside the write transaction.
		return storage.Query{}, fail(ErrInvalid, "not-supported", "chained parameters, _has, _include and _revinclude are not supported in a conditional operation")
	}
	if len(p.q.Clauses) == 0 {
		return storage.Query{}, invalid("a conditional query needs at least one search parameter")
	}
	if err := s.refuseMaskedSearch(ctx, c, p.parsed); err != nil {
		return storage.Query{}, err // recorded by the caller, after any transaction
	}
	p.q.Count, p.q.Offset, p.q.Total, p.q.Sort = 2, 0, false, nil
	if _, err := s.narrow(ctx, c, rd, &p.q); err != nil {
		var e *Error
		if errors.Is(err, authz.ErrNeedsFacts) || errors.As(err, &e) {
			return storage.Query{}, err
		}
		// Not recorded here: this may run inside a write transaction.
		return storage.Query{}, s.denial(c, audit.ActionSearch, storage.Version{Type: typ}, authz.Decision{Policies: []string{"undecidable"}}, err)
	}
	return p.q, nil
}

// matchOne runs a conditional query in tx under a lock that serialises
// concurrent conditional creates of the same query across processes.
func (s *Service) matchOne(ctx context.Context, tx storage.Tx, q storage.Query) (storage.Version, bool, error) {
	if err := tx.Lock(ctx, lockName(q)); err != nil {
		return storage.Version{}, false, err
	}
	r, err := tx.Search(ctx, q)
	if err != nil {
		return storage.Version{}, false, err
	}
	switch len(r.Versions) {
	case 0:
		return storage.Version{}, false, nil
	case 1:
		return r.Versions[0], true, nil
	default:
		return storage.Version{}, false, fail(ErrPreconditionFailed, "multiple-matches", "the conditional query matched more than one resource")
	}
}

// Update stores res as the next version of typ/id, creating it if it
// does not exist. ifMatch > 0 requires the current version to be ifMatch.
func (s *Service) Update(ctx context.Context, c Caller, typ, id string, res fhir.Resource, ifMatch int64) (st Stored, created bool, err error) {
	if !ValidID(id) {
		return Stored{}, false, invalid("the id in the URL is not a valid FHIR id")
	}
	if res.Type() != typ {
		return Stored{}, false, invalid("the resourceType in the body does not match the URL")
	}
	if res.ID() != id {
		return Stored{}, false, invalid("the id in the body must match the id in the URL")
	}
	if err := s.validate(res); err != nil {
		return Stored{}, false, err
	}
	// Prepare the likely next version outside the transaction; if another
	// writer gets there first, update prepares again inside.
	var p *pending
	next := int64(1)
	cur, err := s.store.Current(ctx, typ, id)
	if err == nil {
		next = cur.Version + 1
	}
	if p, err = s.prepareVersion(ctx, nil, res, next, s.now()); err != nil {
		return Stored{}, false, err
	}
	// Load the facts the decisions in the transaction need.
	for _, o := range []ident.Owner{cur.Owner, p.v.Owner} {
		if o != "" {
			_ = s.prewarm(ctx, c, &authz.NeedsFacts{Owner: string(o)})
		}
	}
	var owner ident.Owner
	err = s.updateTx(ctx, c, func(ctx context.Context, tx storage.Tx) error {
		v, view, isNew, err := s.update(ctx, tx, c, res, ifMatch, p)
		st, created, owner = storedOf(v, view), isNew, v.Owner
		return err
	})
	if err != nil {
		return Stored{}, false, storageError(s.recordDenial(ctx, err))
	}
	s.changed(typ, owner)
	return st, created, nil
}

// update writes res as the next version of its type/id; p, if it was
// prepared for exactly that version, saves encoding and indexing again.
// view is the stored version as the caller may be shown it.
//
// A caller whose view of the current version is masked (minimum
// necessary) edits what it sees: what the mask hides is carried over
// from the current version, and what the caller sends of it is dropped
// (authz.Preserve); res itself is left as sent.
func (s *Service) update(ctx context.Context, tx storage.Tx, c Caller, res fhir.Resource, ifMatch int64, p *pending) (v storage.Version, view []byte, isNew bool, err error) {
	next := int64(1)
	masked := false
	cur, err := tx.Current(ctx, res.Type(), res.ID())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if ifMatch > 0 {
			return storage.Version{}, nil, false, s.ifMatchMissing(ctx, tx, c, res, nil)
		}
	case err != nil:
		return storage.Version{}, nil, false, err
	default:
		body, err := s.decisionBody(ctx, tx, cur)
		if err != nil {
			return storage.Version{}, nil, false, err
		}
		if _, err := s.checkWith(ctx, tx, c, audit.ActionUpdate, cur, body); err != nil {
			if e := AsError(err); ifMatch > 0 && StatusCode(e) == statusNotFound && e.denied != nil {
				// Concealed: answer exactly as for an id that does not
				// exist, or If-Match would tell them apart.
				return storage.Version{}, nil, false, s.ifMatchMissing(ctx, tx, c, res, e)
			}
			return storage.Version{}, nil, false, err
		}
		if ifMatch > 0 && cur.Version != ifMatch {
			return storage.Version{}, nil, false, fail(ErrPreconditionFailed, "conflict",
				fmt.Sprintf("If-Match version %d is not the current version %d", ifMatch, cur.Version))
		}
		if !cur.Deleted {
			if err := immutableLinks(res, body); err != nil {
				return storage.Version{}, nil, false, err
			}
			if err := keepSigned(res, body); err != nil {
				return storage.Version{}, nil, false, err
			}
		}
		if masked, err = s.maskedUpdate(ctx, tx, c, cur, body); err != nil {
			return storage.Version{}, nil, false, err
		}
		if masked {
			merged := fhir.Resource(cloneJSON(map[string]any(res)).(map[string]any))
			if err := authz.Preserve(body, merged); err != nil {
				return storage.Version{}, nil, false, err
			}
			res, p = merged, nil
		}
		// Security labels are lowered only by those who may (relabel);
		// anyone else's update keeps them (labels_keep.go). body is the
		// last live version's, so a deleted resource's labels come back
		// with it too.
		if body != nil {
			kept, err := s.keepLabels(ctx, tx, c, cur, body, res)
			if err != nil {
				return storage.Version{}, nil, false, err
			}
			if kept && p != nil {
				p.v.Version = 0 // prepared without the labels: prepare again
			}
		}
		next = cur.Version + 1
	}
	if p == nil || p.v.Version != next {
		if p, err = s.prepareVersion(ctx, tx, res, next, s.now()); err != nil {
			return storage.Version{}, nil, false, err
		}
	}
	a := audit.ActionUpdate
	if next == 1 {
		a = audit.ActionCreate
	}
	// The new version is decided too: an update may move a resource
	// into another compartment or change its labels.
	d, err := s.checkWith(ctx, tx, c, a, storage.Version{Type: p.v.Type, ID: p.v.ID, Owner: p.v.Owner}, p.body)
	if err != nil {
		return storage.Version{}, nil, false, err
	}
	if v, err = s.storeVersion(ctx, tx, p); err != nil {
		return storage.Version{}, nil, false, err
	}
	view = p.body
	if masked {
		if view, err = authz.Redact(p.body); err != nil {
			return storage.Version{}, nil, false, err
		}
	}
	return v, view, next == 1, s.appendWriteEvent(ctx, tx, c, a, v, d, p)
}

// ifMatchMissing is the answer to a PUT with If-Match on an id that
// does not exist — or that the caller may not know exists (hidden, a
// concealed denial): the decision on creating the body as a new
// resource, and if that is allowed, 412. hidden carries the concealed
// denial's audit event, which is what is recorded then.
func (s *Service) ifMatchMissing(ctx context.Context, tx storage.Tx, c Caller, res fhir.Resource, hidden *Error) error {
	clone := fhir.Resource(maps.Clone(map[string]any(res)))
	p, err := s.prepareVersion(ctx, tx, clone, 1, s.now())
	if err != nil {
		return err
	}
	_, cerr := s.checkWith(ctx, tx, c, audit.ActionCreate, storage.Version{Type: p.v.Type, ID: p.v.ID, Owner: p.v.Owner}, p.body)
	if errors.Is(cerr, authz.ErrNeedsFacts) {
		return cerr
	}
	out := AsError(cerr)
	if cerr == nil {
		out = fail(ErrPreconditionFailed, "conflict", "If-Match names a version that does not exist")
	}
	if hidden != nil {
		ev := *hidden.denied
		ev.Status = StatusCode(out)
		out.denied = &ev
	}
	return out
}

// Delete marks typ/id deleted (its history is kept). Deleting a deleted
// resource succeeds and changes nothing; an unknown one is ErrNotFound.
func (s *Service) Delete(ctx context.Context, c Caller, typ, id string) error {
	if cur, err := s.store.Current(ctx, typ, id); err == nil {
		_ = s.prewarm(ctx, c, &authz.NeedsFacts{Owner: string(cur.Owner)})
	}
	var owner ident.Owner
	err := s.updateTx(ctx, c, func(ctx context.Context, tx storage.Tx) error {
		var err error
		owner, err = s.delete(ctx, tx, c, typ, id)
		return err
	})
	if err == nil {
		s.changed(typ, owner)
	}
	if missing(err) {
		return s.recordMiss(ctx, c, audit.ActionDelete, typ+"/"+id, storageError(err))
	}
	return storageError(s.recordDenial(ctx, err))
}

func (s *Service) delete(ctx context.Context, tx storage.Tx, c Caller, typ, id string) (owner ident.Owner, err error) {
	cur, err := tx.Current(ctx, typ, id)
	if err != nil {
		return "", err
	}
	body, err := s.decisionBody(ctx, tx, cur)
	if err != nil {
		return "", err
	}
	d, err := s.checkWith(ctx, tx, c, audit.ActionDelete, cur, body)
	if err != nil {
		return "", err
	}
	if cur.Deleted {
		return cur.Owner, nil
	}
	if err := refuseSignedDelete(typ, body); err != nil {
		return "", err
	}
	v := storage.Version{Type: typ, ID: id, Version: cur.Version + 1, Owner: cur.Owner, LastUpdated: s.now().UTC().Truncate(time.Microsecond), Deleted: true}
	if err := tx.Put(ctx, v, nil); err != nil {
		return "", err
	}
	return v.Owner, s.appendWriteEvent(ctx, tx, c, audit.ActionDelete, v, d, nil)
}

// pending is a resource version ready to be sealed and stored: encoded,
// with its owner and blind-index rows computed. Preparing is the CPU
// work of a write; it can run outside the transaction.
type pending struct {
	res      fhir.Resource
	v        storage.Version // without ciphertext
	patients []ident.Owner   // the patients it names ("Patient/<id>")
	body     []byte
	rows     []storage.IndexRow

	commit audit.Commit // its ledger commitment (ledger.go), computed with the rest
}

// prepareVersion sets res's version and lastUpdated and computes
// everything its write needs but the data key.
func (s *Service) prepareVersion(ctx context.Context, rd ownerReader, res fhir.Resource, version int64, now time.Time) (*pending, error) {
	return s.prepare(ctx, rd, res, version, now, true)
}

// prepare is prepareVersion; check=false skips the decidability checks
// (a repair writing an inactive Consent).
func (s *Service) prepare(ctx context.Context, rd ownerReader, res fhir.Resource, version int64, now time.Time, check bool) (*pending, error) {
	if check {
		if err := decidable(res); err != nil {
			return nil, err
		}
	}
	now = now.UTC().Truncate(time.Microsecond)
	res.SetVersionID(strconv.FormatInt(version, 10))
	res.SetLastUpdated(now)
	body, err := res.Marshal()
	if err != nil {
		return nil, invalid("the resource could not be encoded")
	}
	rows, err := s.indexRows(res)
	if err != nil {
		return nil, err
	}
	lrows, err := s.labelRows(res.Type(), body)
	if err != nil {
		return nil, err
	}
	rows = append(rows, lrows...)
	owner, patients, err := s.ownerOf(ctx, rd, res)
	if err != nil {
		return nil, err
	}
	p := &pending{res: res, body: body, rows: rows, patients: patients,
		v: storage.Version{Type: res.Type(), ID: res.ID(), Version: version, Owner: owner, LastUpdated: now}}
	if p.commit, err = s.putCommit(p.v, p); err != nil {
		return nil, err
	}
	return p, nil
}

// MaxConsentsPerPatient bounds a patient's Consents: every decision
// about the patient evaluates all of them, so an account that stores
// hundreds of large ones would slow every clinician's search.
const MaxConsentsPerPatient = 32

// storeVersion seals a prepared version with its owner's key (created in
// tx if new) and stores it with its index rows.
func (s *Service) storeVersion(ctx context.Context, tx storage.Tx, p *pending) (storage.Version, error) {
	if p.v.Type == "Consent" && p.v.Version == 1 && p.v.Owner != OrgOwner {
		r, err := tx.Search(ctx, storage.Query{Type: "Consent", Count: MaxConsentsPerPatient,
			Clauses: []storage.Clause{{Any: []storage.Cond{{Kind: storage.CondOwner, Owners: []ident.Owner{p.v.Owner}}}}}})
		if err != nil {
			return storage.Version{}, err
		}
		if len(r.Versions) >= MaxConsentsPerPatient {
			return storage.Version{}, fail(ErrUnprocessable, "business-rule",
				fmt.Sprintf("the patient has %d Consents already, the most the server keeps; update one of them instead", MaxConsentsPerPatient))
		}
	}
	dek, err := s.dekInTx(ctx, tx, p.v.Owner, p.patients, true)
	if err != nil {
		return storage.Version{}, err
	}
	v := p.v
	v.Ciphertext, err = dek.Seal(p.body, keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: v.Owner})
	if err != nil {
		return storage.Version{}, fmt.Errorf("sealing %s/%s: %w", v.Type, v.ID, err)
	}
	if err := tx.Put(ctx, v, p.rows); err != nil {
		return storage.Version{}, err
	}
	return v, nil
}

// appendWriteEvent appends the audit event of version v, stored in tx
// from p (nil for a delete marker), with its ledger commitment.
func (s *Service) appendWriteEvent(ctx context.Context, tx storage.Tx, c Caller, a audit.Action, v storage.Version, d authz.Decision, p *pending) error {
	lc, err := s.putCommit(v, p)
	if err != nil {
		return err
	}
	ev := s.event(c, a)
	decided(&ev, d)
	ev.Touch(entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner)...)
	ev.Ledger = []audit.Commit{lc}
	if err := s.ownerCommits(ctx, tx, ev.Ledger); err != nil {
		return err
	}
	rec, err := s.log.Seal(ev)
	if err != nil {
		return unavailable(err)
	}
	return appendAudit(ctx, tx, rec)
}

// appendAudit appends write events in tx. Whatever the storage cause, a
// write whose event cannot be appended fails closed as unavailable (503
// with Retry-After), like a read whose event cannot be made durable.
// The cause stays in the chain, so Update still retries what it may.
func appendAudit(ctx context.Context, tx storage.Tx, recs ...storage.AuditRecord) error {
	if err := tx.AppendAudit(ctx, recs...); err != nil {
		return unavailable(fmt.Errorf("%w: %w", audit.ErrUnavailable, err))
	}
	return nil
}

// lockName is the cross-process lock of a conditional query: the same
// query on the same type always takes the same lock.
func lockName(q storage.Query) string {
	var h strings.Builder
	fmt.Fprintf(&h, "%s|", q.Type)
	for _, cl := range q.Clauses {
		for _, c := range cl.Any {
			fmt.Fprintf(&h, "%d/%s/%s/%v/%d/%d/%q/", c.Kind, c.Param, c.Op, c.Negate, c.Lo, c.Hi, c.IDs)
			for _, x := range c.Hashes {
				h.WriteString(hex.EncodeToString(x))
			}
		}
		h.WriteByte('&')
	}
	// The storage driver hashes the name into its lock key space.
	return "conditional:" + h.String()
}

// immutableLinks refuses an update that re-points a link relationships
// are derived from: a PractitionerRole is one practitioner's for life.
// A CareTeam or Encounter may name a PractitionerRole; re-pointing the
// role to another practitioner would hand that practitioner the care
// team's patients without anyone writing a care team (a directory write
// by an administrator, unseen). Create another role instead.
func immutableLinks(res fhir.Resource, old []byte) error {
	if res.Type() != "PractitionerRole" || old == nil {
		return nil
	}
	var before struct {
		Practitioner struct {
			Reference string `json:"reference"`
		} `json:"practitioner"`
	}
	if err := json.Unmarshal(old, &before); err != nil {
		return fmt.Errorf("reading the stored PractitionerRole: %w", err)
	}
	now := ""
	if p, ok := res["practitioner"].(map[string]any); ok {
		now, _ = p["reference"].(string)
	}
	if now != before.Practitioner.Reference {
		return fail(ErrUnprocessable, "business-rule",
			"PractitionerRole.practitioner cannot change: care teams and encounters naming the role would pass to another practitioner; create a new PractitionerRole")
	}
	return nil
}
