package record

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Return says what a write response carries (Prefer: return=...).
type Return int

// Return preferences.
const (
	ReturnMinimal Return = iota
	ReturnRepresentation
	ReturnOutcome
)

// entry is one Bundle entry during processing.
type entry struct {
	idx         int
	method      string
	typ, id     string // target of the request URL
	query       string // conditional query (PUT/PATCH/DELETE/GET with "?")
	fullURL     string
	ifNoneExist string
	ifMatch     int64
	res         fhir.Resource // the resource written (POST, PUT; a PATCH's result)

	patchBody fhir.Resource // PATCH: the entry's resource, a Binary or a Parameters
	patcher   Patcher       // PATCH with a Binary: its JSON Patch

	// results
	status   int
	location string
	version  int64
	modified time.Time
	body     []byte
	err      *Error
	existing storage.Version // conditional create matched

	prep *pending // prepared before the transaction (fast path), or nil

	owner ident.Owner  // owner of the version written (write hook)
	newID string       // id a conditional PUT that matched nothing creates
	acted string       // "Type/id" the write acted on (deleted, matched or written), or ""
	miss  string       // "Type/id" a PATCH or DELETE found no resource at (an attempt to record), or ""
	missA audit.Action // the action of that attempt
}

// methodOrder is the processing order FHIR requires for transactions:
// DELETE, POST, PUT/PATCH, then GET (R4 §3.1.0.11.2).
var methodOrder = map[string]int{methodDelete: 0, methodPost: 1, methodPut: 2, methodPatch: 2, methodGet: 3}

// ProcessBundle runs a batch or transaction Bundle and returns the
// response Bundle. A transaction is atomic: any failing entry fails the
// whole Bundle with that entry's error and nothing is stored.
func (s *Service) ProcessBundle(ctx context.Context, c Caller, b fhir.Resource, ret Return) ([]byte, error) {
	if b.Type() != "Bundle" {
		return nil, invalid("POST to the base URL takes a Bundle")
	}
	kind, _ := b["type"].(string)
	if kind != "transaction" && kind != "batch" {
		return nil, invalid(`the Bundle type must be "transaction" or "batch"`)
	}
	raw, _ := b["entry"].([]any)
	if _, ok := b["entry"]; ok && raw == nil {
		return nil, invalid("Bundle.entry must be an array")
	}
	if len(raw) > s.maxEntries() {
		return nil, fail(ErrTooLarge, "too-costly",
			fmt.Sprintf("the Bundle has more than %d entries", s.maxEntries()))
	}
	entries := make([]*entry, len(raw))
	refs := make(map[string]string) // fullUrl -> Type/id
	for i, r := range raw {
		e := &entry{idx: i}
		entries[i] = e
		if err := s.prepareEntry(e, r); err != nil {
			if kind == "transaction" {
				return nil, entryError(i, err)
			}
			e.err = AsError(err)
			continue
		}
		if e.fullURL != "" && (e.method == methodPost || e.method == methodPut) && e.id != "" {
			refs[e.fullURL] = e.typ + "/" + e.id
		}
	}
	if kind == "transaction" {
		if err := s.transaction(ctx, c, entries, refs); err != nil {
			return nil, err
		}
	} else {
		s.batchEntries(ctx, c, entries, refs)
	}
	s.runReads(ctx, c, entries)
	return s.responseBundle(kind, entries, ret)
}

func entryError(i int, err error) error {
	e := AsError(err)
	out := &Error{Kind: e.Kind, Err: e.Err, denied: e.denied}
	for _, is := range e.Issues {
		is.Diagnostic = fmt.Sprintf("Bundle.entry[%d]: %s", i, is.Diagnostic)
		out.Issues = append(out.Issues, is)
	}
	return out
}

func (s *Service) prepareEntry(e *entry, raw any) error {
	m, ok := raw.(map[string]any)
	if !ok {
		return invalid("each Bundle entry must be an object")
	}
	if f, ok := m["fullUrl"].(string); ok {
		e.fullURL = f
	}
	req, ok := m["request"].(map[string]any)
	if !ok {
		return invalid("each entry of a batch or transaction needs a request")
	}
	e.method, _ = req["method"].(string)
	if _, ok := methodOrder[e.method]; !ok {
		return invalid("entry.request.method must be GET, POST, PUT, PATCH or DELETE")
	}
	u, _ := req["url"].(string)
	if u == "" {
		return invalid("entry.request.url is required")
	}
	path, query, _ := strings.Cut(u, "?")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if !fhir.IsR4Type(parts[0]) {
		return invalid("entry.request.url names an unknown resource type")
	}
	e.typ, e.query = parts[0], query
	if len(parts) >= 2 {
		e.id = parts[1]
		if !ValidID(e.id) {
			return invalid("entry.request.url has an invalid id")
		}
	}
	if inx, ok := req["ifNoneExist"].(string); ok {
		e.ifNoneExist = inx
	}
	if im, ok := req["ifMatch"].(string); ok {
		v, err := ParseETag(im)
		if err != nil {
			return invalid("entry.request.ifMatch is not a valid ETag")
		}
		e.ifMatch = v
	}
	switch e.method {
	case methodPost, methodPut:
		r, ok := m["resource"].(map[string]any)
		if !ok {
			return invalid("a POST or PUT entry needs a resource")
		}
		e.res = fhir.Resource(r)
		if e.res.Type() != e.typ {
			return invalid("the entry's resourceType does not match its request URL")
		}
		if err := s.validate(e.res); err != nil {
			return err
		}
		if e.method == methodPost {
			if len(parts) != 1 {
				return invalid("a POST entry's URL must be a resource type")
			}
			e.id = s.newID()
			e.res.SetID(e.id)
		} else {
			if e.id == "" && e.query == "" {
				return invalid("a PUT entry's URL must be Type/id or a conditional Type?query")
			}
			if e.id != "" && e.res.ID() != e.id {
				return invalid("a PUT entry's resource id must match its URL")
			}
		}
	case methodPatch:
		if e.id == "" && e.query == "" {
			return invalid("a PATCH entry's URL must be Type/id or a conditional Type?query")
		}
		if len(parts) > 2 {
			return invalid("a PATCH entry's URL must be Type/id or a conditional Type?query")
		}
		r, ok := m["resource"].(map[string]any)
		if !ok {
			return invalid("a PATCH entry needs a resource: a Binary (JSON Patch) or a Parameters (FHIRPath Patch)")
		}
		e.patchBody = fhir.Resource(r)
		p, err := s.entryPatcher(e.patchBody)
		if err != nil {
			return err
		}
		if _, ok := p.(JSONPatch); ok {
			e.patcher = p
		}
	case methodDelete:
		if e.id == "" && e.query == "" {
			return invalid("a DELETE entry's URL must be Type/id or a conditional Type?query")
		}
	}
	return nil
}

// transaction writes every entry in one database transaction.
func (s *Service) transaction(ctx context.Context, c Caller, entries []*entry, refs map[string]string) error {
	order := orderedWrites(entries)
	originals := make([]fhir.Resource, len(entries))
	origIDs := make([]string, len(entries))
	for i, e := range entries {
		originals[i], origIDs[i] = e.res, e.id
	}
	s.prepareCreates(ctx, c, entries, refs)
	s.prewarmEntries(ctx, c, entries)
	attempt := 0
	err := s.updateTx(ctx, c, func(ctx context.Context, stx storage.Tx) error {
		tx := &auditBuffer{Tx: stx}
		attempt++
		// A retried attempt starts again from the Bundle as received,
		// and prepares nothing ahead.
		local := make(map[string]string, len(refs))
		for k, v := range refs {
			local[k] = v
		}
		for i, e := range entries {
			if attempt > 1 {
				e.prep = nil
			}
			if e.prep == nil && originals[i] != nil {
				e.res = fhir.Resource(cloneJSON(map[string]any(originals[i])).(map[string]any))
			}
			e.existing, e.err, e.acted, e.miss, e.missA = storage.Version{}, nil, "", "", ""
			if attempt > 1 && e.method == methodPut {
				e.id = origIDs[i] // a conditional PUT resolves its target again
			}
		}
		// "If any resource identities (including resolved identities
		// from conditional update/delete) overlap in steps 1-3, then the
		// transaction SHALL fail" (R4 http.html#trules).
		acted := make(map[string]bool, len(order))
		for _, e := range order {
			if err := s.writeEntry(ctx, tx, c, e, local, entries); err != nil {
				if errors.Is(err, authz.ErrNeedsFacts) {
					return err // updateTx loads the facts and reruns
				}
				return entryError(e.idx, err)
			}
			if e.ifNoneExist != "" && e.existing.ID != "" {
				unprepare(entries, originals)
			}
			if e.acted != "" {
				if acted[e.acted] {
					return entryError(e.idx, invalid("this entry acts on a resource another entry of the transaction already deletes, creates or updates (entries may not overlap)"))
				}
				acted[e.acted] = true
			}
		}
		return tx.flush(ctx)
	})
	if err == nil {
		s.changedEntries(entries)
		return nil
	}
	for _, e := range entries {
		if e.miss != "" {
			// The PATCH or DELETE of an id that does not exist failed
			// the transaction: an attempt all the same (DESIGN §6).
			return storageError(s.recordMiss(ctx, c, e.missA, e.miss, err))
		}
	}
	return storageError(s.recordDenial(ctx, err))
}

// unprepare drops the prepared work of entries not yet written: a
// conditional create matched a stored resource, and references to its
// fullUrl now name that one, not the id prepared.
func unprepare(entries []*entry, originals []fhir.Resource) {
	for i, e := range entries {
		if e.prep != nil && e.status == 0 {
			e.prep = nil
			e.res = fhir.Resource(cloneJSON(map[string]any(originals[i])).(map[string]any))
		}
	}
}

// changedEntries calls the write hook with the types of written entries.
func (s *Service) changedEntries(entries []*entry) {
	for _, e := range entries {
		if e.method != methodGet && e.err == nil && e.status != 0 {
			s.changed(e.typ, e.owner)
		}
	}
}

// recordEntryDenials records the audit events of batch entries denied
// inside the shared transaction (rolled back or not, a denial is kept
// only in the entry).
func (s *Service) recordEntryDenials(ctx context.Context, entries []*entry) {
	for _, e := range entries {
		if e.err != nil && e.err.denied != nil {
			if err := s.recordDenial(ctx, e.err); err != nil {
				e.err = AsError(err)
			}
		}
	}
}

// recordEntryMisses records the attempts of batch PATCH and DELETE
// entries whose resource does not exist (404), as REST does; if one cannot be
// recorded, that entry fails as unavailable instead (fail closed).
func (s *Service) recordEntryMisses(ctx context.Context, c Caller, entries []*entry) {
	for _, e := range entries {
		if e.miss != "" && e.err != nil && StatusCode(e.err) == statusNotFound {
			if err := s.recordMiss(ctx, c, e.missA, e.miss, nil); err != nil {
				e.err = AsError(err)
			}
		}
	}
}

// prepareCreates does, before the transaction, the CPU work of every
// create in a transaction Bundle: it resolves references (conditional
// ones against committed data), encodes the resource and computes its
// blind-index rows, so the transaction itself only seals and writes.
// Transactions run one at a time on SQLite: work done outside them runs
// in parallel. A conditional create is prepared as if it matched
// nothing (an import's creates all are conditional, ADR 0037, and most
// match nothing); when one matches, the transaction drops what was
// prepared after it (unprepare), whose references may name it, and
// does that work itself. It prepares nothing if anything fails; the
// transaction then does all the work itself, with the same result.
func (s *Service) prepareCreates(ctx context.Context, c Caller, entries []*entry, refs map[string]string) {
	for _, e := range entries {
		if e.method == methodPost && e.res == nil {
			return
		}
	}
	local := make(map[string]string, len(refs))
	for k, v := range refs {
		local[k] = v
	}
	now := s.now()
	preps := make([]*pending, len(entries))
	for i, e := range entries {
		if e.method != methodPost {
			continue
		}
		res := fhir.Resource(cloneJSON(map[string]any(e.res)).(map[string]any))
		if err := s.rewriteRefs(ctx, c, s.store, res, local); err != nil {
			return
		}
		p, err := s.prepareVersion(ctx, nil, res, 1, now)
		if err != nil {
			return
		}
		preps[i] = p
	}
	for i, e := range entries {
		if preps[i] != nil {
			e.prep, e.res = preps[i], preps[i].res
		}
	}
}

// batchEntries runs each entry on its own. Entries share one database
// transaction for speed; if that transaction fails for a reason other
// than an entry's own error, each entry is retried in its own, unless
// the database was unavailable: then they fail with it.
func (s *Service) batchEntries(ctx context.Context, c Caller, entries []*entry, refs map[string]string) {
	order := orderedWrites(entries)
	if len(order) == 0 {
		// Reads only (runReads): no write transaction to wait for.
		return
	}
	s.prewarmEntries(ctx, c, entries)
	err := s.updateTx(ctx, c, func(ctx context.Context, stx storage.Tx) error {
		tx := &auditBuffer{Tx: stx}
		for _, e := range order {
			if e.err != nil && e.err.denied != nil {
				e.err = nil // decided in an earlier round; decided again
			}
		}
		for _, e := range order {
			if e.err != nil {
				continue
			}
			if err := s.writeEntry(ctx, tx, c, e, refs, entries); err != nil {
				var re *Error
				if errors.As(err, &re) && StatusCode(re) < 500 {
					e.err = re
					continue
				}
				return err
			}
		}
		return tx.flush(ctx)
	})
	if err == nil {
		s.recordEntryDenials(ctx, entries)
		s.recordEntryMisses(ctx, c, entries)
		s.changedEntries(entries)
		return
	}
	if errors.Is(err, storage.ErrUnavailable) {
		// The database is unavailable (a lock or statement timeout, a
		// lost connection): each entry on its own would wait as long
		// again. The entries fail with it (503), denials included: their
		// events could not be recorded either (fail closed).
		for _, e := range order {
			if e.err == nil || e.err.denied != nil {
				e.status = 0
				e.err = AsError(storageError(err))
			}
		}
		return
	}
	for _, e := range order {
		if e.err != nil {
			continue
		}
		e.status = 0
		err := s.updateTx(ctx, c, func(ctx context.Context, tx storage.Tx) error {
			return s.writeEntry(ctx, tx, c, e, refs, entries)
		})
		if err != nil {
			e.err = AsError(storageError(err))
		}
	}
	s.recordEntryDenials(ctx, entries)
	s.recordEntryMisses(ctx, c, entries)
	s.changedEntries(entries)
}

func orderedWrites(entries []*entry) []*entry {
	var w []*entry
	for _, e := range entries {
		if e.method != methodGet && e.err == nil {
			w = append(w, e)
		}
	}
	sort.SliceStable(w, func(i, j int) bool { return methodOrder[w[i].method] < methodOrder[w[j].method] })
	return w
}

// writeEntry performs one write entry inside tx.
func (s *Service) writeEntry(ctx context.Context, tx storage.Tx, c Caller, e *entry, refs map[string]string, all []*entry) error {
	switch e.method {
	case methodDelete:
		id, err := s.resolveTarget(ctx, c, tx, e)
		if err != nil {
			return err
		}
		if id == "" {
			e.status = statusNoContent
			return nil
		}
		e.acted = e.typ + "/" + id
		owner, err := s.delete(ctx, tx, c, e.typ, id)
		e.owner = owner
		if err != nil {
			if missing(err) {
				// Answered exactly as an id the caller may not know
				// exists, and recorded as an attempt, as REST does.
				e.miss, e.missA = e.typ+"/"+id, audit.ActionDelete
				return storageError(err)
			}
			return err
		}
		e.status = statusNoContent
		return nil
	case methodPost:
		if e.ifNoneExist != "" {
			q, err := s.conditionQuery(ctx, c, tx, e.typ, e.ifNoneExist)
			if err != nil {
				return err
			}
			v, found, err := s.matchOne(ctx, tx, q)
			if err != nil {
				return err
			}
			if found {
				e.acted = v.Type + "/" + v.ID
				e.existing, e.status = v, statusOK
				e.location = entityRef(v.Type, v.ID, v.Version)
				e.version, e.modified = v.Version, v.LastUpdated
				if e.fullURL != "" {
					refs[e.fullURL] = v.Type + "/" + v.ID
				}
				return nil
			}
		}
		p := e.prep
		if p == nil {
			if err := s.rewriteRefs(ctx, c, tx, e.res, refs); err != nil {
				return err
			}
			var err error
			if p, err = s.prepareVersion(ctx, tx, e.res, 1, s.now()); err != nil {
				return err
			}
		}
		d, err := s.checkWith(ctx, tx, c, audit.ActionCreate, storage.Version{Type: p.v.Type, Owner: p.v.Owner}, p.body)
		if err != nil {
			return err
		}
		v, err := s.storeVersion(ctx, tx, p)
		if err != nil {
			return err
		}
		s.entryWritten(e, v, statusCreated)
		e.acted = v.Type + "/" + v.ID
		return s.appendWriteEvent(ctx, tx, c, audit.ActionCreate, v, d, p)
	case methodPut:
		if e.id == "" {
			id, err := s.resolveTarget(ctx, c, tx, e)
			if err != nil {
				return err
			}
			if id == "" {
				// The same new id on every attempt of the transaction.
				if e.newID == "" {
					e.newID = s.newID()
				}
				id = e.newID
			}
			e.id = id
			e.res.SetID(id)
		}
		if err := s.rewriteRefs(ctx, c, tx, e.res, refs); err != nil {
			return err
		}
		v, _, created, err := s.update(ctx, tx, c, e.res, e.ifMatch, nil)
		if err != nil {
			return err
		}
		status := statusOK
		if created {
			status = statusCreated
		}
		s.entryWritten(e, v, status)
		e.acted = v.Type + "/" + v.ID
		return nil
	case methodPatch:
		return s.patchEntry(ctx, tx, c, e, refs)
	}
	return nil
}

func (s *Service) entryWritten(e *entry, v storage.Version, status int) {
	e.status, e.version, e.modified, e.owner = status, v.Version, v.LastUpdated, v.Owner
	e.location = entityRef(v.Type, v.ID, v.Version)
	e.body = nil
}

// ETag is the weak ETag of a version, as FHIR uses: W/"3".
func ETag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ParseETag reads W/"3" or "3" into 3.
func ParseETag(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		return 0, errors.New("invalid etag")
	}
	return v, nil
}

func cloneJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = cloneJSON(x)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = cloneJSON(x)
		}
		return a
	default:
		return v
	}
}

// auditBuffer is a transaction whose audit appends are collected and
// written in one multi-row statement when the Bundle's writes are done:
// the events still commit in the same transaction as the data.
type auditBuffer struct {
	storage.Tx
	recs []storage.AuditRecord
}

func (b *auditBuffer) AppendAudit(_ context.Context, recs ...storage.AuditRecord) error {
	b.recs = append(b.recs, recs...)
	return nil
}

func (b *auditBuffer) flush(ctx context.Context) error {
	if len(b.recs) == 0 {
		return nil
	}
	err := appendAudit(ctx, b.Tx, b.recs...)
	b.recs = b.recs[:0]
	return err
}
