package record

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Guard is the authorization of one caller (authz.Bound). The record
// consults it wherever it learns what a request touches: before a
// write, after opening a resource (whose labels it then knows) and, for
// a search, before the query runs (the narrowing filter).
//
// Every Caller needs one: a nil Guard refuses everything (see
// [Caller]). Trusted offline commands use [Offline].
type Guard interface {
	Decide(ctx context.Context, action authz.Action, t authz.Target) (authz.Decision, error)
	Narrow(ctx context.Context, action authz.Action, typ string) (authz.Filter, error)
}

var (
	_ Guard = (*authz.Bound)(nil)
	_ Guard = offline{}
	_ Guard = noGuard{}
)

// PolicyOffline is recorded as the deciding policy of every access by
// an [Offline] caller.
const PolicyOffline = "offline-operator"

// offline is the guard of trusted offline commands.
type offline struct{}

func (offline) Decide(context.Context, authz.Action, authz.Target) (authz.Decision, error) {
	return authz.Decision{Allowed: true, Policies: []string{PolicyOffline}}, nil
}

func (offline) Narrow(context.Context, authz.Action, string) (authz.Filter, error) {
	return authz.Filter{All: true, Policies: []string{PolicyOffline}}, nil
}

// Offline returns the guard of a trusted offline command (import, demo
// seeding, reindex, verify): code run by an operator who already holds
// the key file and the data directory, for whom authorization can add
// nothing. It allows everything, and every access it makes is audited
// with the policy [PolicyOffline]. Nothing that serves requests may use
// it: internal/archtest fails the build of a test if httpapi or webui
// (or any package but the CLI, the composition root and tests) names it.
func Offline() Guard { return offline{} }

// ErrNoGuard is the cause of the refusal of a Caller without a Guard.
var ErrNoGuard = errors.New("record: the caller has no authorization guard")

// noGuard is what a Caller without a Guard gets: every decision fails.
type noGuard struct{}

func (noGuard) Decide(context.Context, authz.Action, authz.Target) (authz.Decision, error) {
	return authz.Decision{}, fmt.Errorf("%w: %w", ErrNoGuard, authz.ErrUndecidable)
}

func (noGuard) Narrow(context.Context, authz.Action, string) (authz.Filter, error) {
	return authz.Filter{}, fmt.Errorf("%w: %w", ErrNoGuard, authz.ErrUndecidable)
}

// guard returns c's guard: noGuard (refuse everything) when it has none.
func (c Caller) guard() Guard {
	if c.Guard == nil {
		return noGuard{}
	}
	return c.Guard
}

// Index columns of resource labels for authorization (blind indexes
// like every token): meta.security and meta.tag codes. Not FHIR search
// parameters: the HTTP API cannot search them.
const (
	labelParam = "authz:security"
	tagParam   = "authz:tag"
)

// labelRows indexes the meta.security and meta.tag codes of a resource.
func (s *Service) labelRows(typ string, body []byte) ([]storage.IndexRow, error) {
	sec, _, err := authz.ResourceLabels(body, false)
	if err != nil {
		return nil, labelsError(err)
	}
	all, _, err := authz.ResourceLabels(body, true)
	if err != nil {
		return nil, labelsError(err)
	}
	var rows []storage.IndexRow
	add := func(param, code string) error {
		h, err := s.keys.BlindIndex(hashInput(typ, search.Term{Param: param, Key: code}))
		if err != nil {
			return fmt.Errorf("computing blind index: %w", err)
		}
		rows = append(rows, storage.IndexRow{Param: param, Hash: h})
		return nil
	}
	for _, c := range sec {
		if err := add(labelParam, c); err != nil {
			return nil, err
		}
	}
	for _, c := range all {
		if !slices.Contains(sec, c) {
			if err := add(tagParam, c); err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}

func labelsError(err error) error {
	if errors.Is(err, authz.ErrTooManyLabels) {
		return failCause(ErrUnprocessable, "too-costly",
			fmt.Sprintf("the resource carries more than %d security labels, tags or categories; authorization decides on all of them, so more are refused", authz.MaxLabels), err)
	}
	return failCause(ErrUnprocessable, "invalid", "the resource's meta could not be read", err)
}

// decidable refuses what authorization could not decide on once
// stored: a Consent it cannot read in full (it would deny every access
// to the patient's record), and a resource that refers to a patient by
// something else than a literal reference (a contained Patient, an
// identifier-only Patient reference), which would hold that patient's
// information without belonging to the patient.
func decidable(res fhir.Resource) error {
	if res.Type() == "AuditEvent" {
		// The audit log is the server's: an AuditEvent stored through
		// the API would sit in a patient's compartment ($everything,
		// history) looking like a log entry nobody can verify.
		return fail(ErrUnprocessable, "business-rule",
			"AuditEvent resources are the server's own audit log (GET /fhir/AuditEvent); they are not written through the API")
	}
	if res.Type() == "Consent" {
		body, err := res.Marshal()
		if err != nil {
			return invalid("the resource could not be encoded")
		}
		if _, err := authz.ParseConsent(body); err != nil {
			return failCause(ErrUnprocessable, "business-rule",
				"this Consent cannot be enforced in full: "+consentProblem(err)+"; authorization would refuse every access it could bind, so it is not accepted", err)
		}
	}
	if search.UnresolvedPatient(res) {
		return fail(ErrUnprocessable, "business-rule",
			"a patient must be referenced literally (Patient/<id>): contained Patient resources and identifier-only Patient references are not accepted; resolve them with a conditional reference (Patient?identifier=...) in a transaction")
	}
	return nil
}

// consentProblem is the safe reason ParseConsent gave (its messages
// quote nothing from the input).
func consentProblem(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "parsing consent: ")
	if i := strings.Index(msg, ": authz:"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

func (s *Service) labelHash(typ, param, code string) ([]byte, error) {
	return s.keys.BlindIndex(hashInput(typ, search.Term{Param: param, Key: code}))
}

// narrowing turns an authorization filter into store clauses. The
// owner condition comes first; allowed are the ids of the PerRow
// owners' resources decided one by one (perRow): they pass it too.
func (s *Service) narrowing(typ string, f authz.Filter, allowed []string) ([]storage.Clause, error) {
	var cls []storage.Clause
	var owner *storage.Clause
	switch {
	case f.All && len(f.Except) > 0:
		cls = append(cls, storage.Clause{Any: []storage.Cond{{Kind: storage.CondOwner, Owners: asOwners(f.Except), Negate: true}}})
		owner = &cls[0]
	case !f.All:
		cls = append(cls, storage.Clause{Any: []storage.Cond{{Kind: storage.CondOwner, Owners: asOwners(f.Owners)}}})
		owner = &cls[0]
	}
	if owner != nil && len(allowed) > 0 {
		owner.Any = append(owner.Any, storage.Cond{Kind: storage.CondID, IDs: allowed, Authz: true})
	}
	for _, r := range f.Labels {
		h, err := s.labelHash(typ, labelParam, r.Label)
		if err != nil {
			return nil, fmt.Errorf("computing blind index: %w", err)
		}
		// Without the label, or with an owner the rule admits. The
		// per-row owners' resources were decided on all their labels
		// already: a rule listing admitted owners admits them too.
		owners := r.Owners
		if !r.Except {
			owners = slices.Concat(owners, f.PerRow)
		}
		cl := storage.Clause{Any: []storage.Cond{{Kind: storage.CondHash, Param: labelParam, Hashes: [][]byte{h}, Negate: true}}}
		if r.Except || len(owners) > 0 {
			cl.Any = append(cl.Any, storage.Cond{Kind: storage.CondOwner, Owners: asOwners(owners), Negate: r.Except})
		}
		cls = append(cls, cl)
	}
	return cls, nil
}

// MaxPerRow bounds the resources of consent-restricted patients one
// narrowed query decides one by one (perRow): beyond it the search is
// refused as too costly rather than answered incompletely.
const MaxPerRow = 5000

// keyedReader is what deciding stored resources one by one needs: the
// store, or a write transaction.
type keyedReader interface {
	Search(ctx context.Context, q storage.Query) (storage.Result, error)
	Key(ctx context.Context, owner ident.Owner) (storage.KeyRecord, error)
	JointMembers(ctx context.Context, owner ident.Owner) ([]ident.Owner, error)
}

// perRow decides, one by one, the resources of f's PerRow owners that
// q (the caller's own clauses, before narrowing) matches, and returns
// the ids of those c may see for action. rd is the store, or the write
// transaction a conditional operation runs in.
func (s *Service) perRow(ctx context.Context, c Caller, rd keyedReader, q storage.Query, f authz.Filter, a audit.Action) ([]string, error) {
	if len(f.PerRow) == 0 {
		return nil, nil
	}
	q.Clauses = append(slices.Clone(q.Clauses), storage.Clause{Any: []storage.Cond{{Kind: storage.CondOwner, Owners: asOwners(f.PerRow)}}})
	q.Count, q.Offset, q.Total, q.Sort = MaxPerRow+1, 0, false, nil
	r, err := rd.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(r.Versions) > MaxPerRow {
		return nil, failCause(ErrInvalid, "too-costly",
			"the search reaches too many records whose patients restrict access by consent; add a more selective parameter (such as patient)",
			fmt.Errorf("narrowing: more than %d per-row decisions", MaxPerRow))
	}
	var ids []string
	for _, v := range r.Versions {
		body, err := s.openWith(ctx, rd, v)
		if errors.Is(err, ErrGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, err := s.checkWith(ctx, rd, c, a, v, body); err != nil {
			if errors.Is(err, authz.ErrNeedsFacts) || StatusCode(err) == statusUnavailable {
				return nil, err
			}
			continue
		}
		ids = append(ids, v.ID)
	}
	return ids, nil
}

// narrow adds c's search filter for q.Type to q, deciding the resources
// of consent-restricted patients one by one through rd (the store, or
// the write transaction a conditional operation runs in).
func (s *Service) narrow(ctx context.Context, c Caller, rd keyedReader, q *storage.Query) (authz.Filter, error) {
	return s.narrowAs(ctx, c, rd, q, audit.ActionSearch)
}

// narrowAs is narrow for the policy action of a (audit.ActionLocate:
// authz.Locate).
func (s *Service) narrowAs(ctx context.Context, c Caller, rd keyedReader, q *storage.Query, a audit.Action) (authz.Filter, error) {
	f, err := c.guard().Narrow(ctx, actionOf(a), q.Type)
	if err != nil {
		return authz.Filter{}, err // ErrNeedsFacts included: see updateTx
	}
	allowed, err := s.perRow(ctx, c, rd, *q, f, a)
	if err != nil {
		return authz.Filter{}, err
	}
	cls, err := s.narrowing(q.Type, f, allowed)
	if err != nil {
		return authz.Filter{}, err
	}
	q.Clauses = append(q.Clauses, cls...)
	return f, nil
}

// actionOf maps audit actions onto policy actions.
func actionOf(a audit.Action) authz.Action {
	switch a {
	case audit.ActionRead:
		return authz.Read
	case audit.ActionVRead:
		return authz.VRead
	case audit.ActionSearch:
		return authz.Search
	case audit.ActionHistory, audit.ActionHistoryType, audit.ActionHistorySystem:
		return authz.History
	case audit.ActionEverything:
		return authz.Everything
	case audit.ActionCreate:
		return authz.Create
	case audit.ActionUpdate:
		return authz.Update
	case audit.ActionDelete:
		return authz.Delete
	case audit.ActionErase:
		return authz.Erase
	case audit.ActionLocate:
		return authz.Locate
	}
	return authz.Action(a)
}

// check decides act on typ/id of owner, whose current body (if known)
// gives the labels. A denial or a failure to decide is an *Error
// carrying its audit event: callers outside a transaction pass it to
// recordDenial; inside one, the event is recorded after rollback.
func (s *Service) check(ctx context.Context, c Caller, a audit.Action, v storage.Version, body []byte) (authz.Decision, error) {
	return s.decideWith(ctx, nil, c, a, actionOf(a), v, body)
}

// checkAs is check deciding the authorization action act (which may
// differ from the audit action's, e.g. authz.HistoryType).
func (s *Service) checkAs(ctx context.Context, c Caller, a audit.Action, act authz.Action, v storage.Version, body []byte) (authz.Decision, error) {
	return s.decideWith(ctx, nil, c, a, act, v, body)
}

// checkWith is check reading what it needs (a joint owner's patients)
// through rd: a write transaction, or nil for the store.
func (s *Service) checkWith(ctx context.Context, rd memberReader, c Caller, a audit.Action, v storage.Version, body []byte) (authz.Decision, error) {
	return s.decideWith(ctx, rd, c, a, actionOf(a), v, body)
}

// decideWith is the decision behind check, checkAs and checkWith.
func (s *Service) decideWith(ctx context.Context, rd memberReader, c Caller, a audit.Action, act authz.Action, v storage.Version, body []byte) (authz.Decision, error) {
	t := authz.Target{Type: v.Type, ID: v.ID, Owner: string(v.Owner), Body: body}
	if strings.HasPrefix(string(v.Owner), JointPrefix) {
		ps, err := s.patientsOf(ctx, rd, v.Owner)
		if err != nil {
			return authz.Decision{}, s.denial(c, a, v, authz.Decision{Policies: []string{"undecidable"}}, err)
		}
		t.Patients = ownerStrings(ps)
	}
	if body != nil {
		var err error
		if t.Labels, t.Category, err = authz.ResourceLabels(body, false); err != nil {
			return authz.Decision{}, s.denial(c, a, v, authz.Decision{Policies: []string{"undecidable"}}, err)
		}
	}
	d, err := c.guard().Decide(ctx, act, t)
	if errors.Is(err, authz.ErrNeedsFacts) {
		return authz.Decision{}, err // updateTx loads the facts and reruns
	}
	if err != nil {
		return authz.Decision{}, s.denial(c, a, v, authz.Decision{Policies: []string{"undecidable"}}, err)
	}
	if !d.Allowed {
		return d, s.denial(c, a, v, d, nil)
	}
	return d, nil
}

// denial builds the error (with its audit event) for a denied request.
func (s *Service) denial(c Caller, a audit.Action, v storage.Version, d authz.Decision, cause error) *Error {
	ev := s.event(c, a)
	ev.Outcome = audit.OutcomeDenied
	ev.Policies = d.Policies
	if v.Type != "" {
		ref := v.Type + "/" + v.ID
		if v.Version > 0 {
			ref = entityRef(v.Type, v.ID, v.Version)
		}
		if v.ID == "" {
			ref = v.Type
		}
		ev.Touch(ref, s.eventPatients(v.Owner)...)
	} else {
		ev.Patients = s.eventPatients(v.Owner)
	}
	var e *Error
	switch {
	case cause != nil && (errors.Is(cause, storage.ErrUnavailable) || errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded)):
		e = unavailable(fmt.Errorf("%w: %w", ErrForbidden, cause))
		ev.Outcome = audit.OutcomeError
	case cause != nil:
		e = failCause(ErrForbidden, "forbidden", "access denied: the request could not be authorized", cause)
	case d.Conceal:
		// The same answer as a resource that does not exist.
		e = failCause(ErrNotFound, "not-found", "resource not found", ErrForbidden)
	default:
		e = fail(ErrForbidden, "forbidden", "access denied by policy")
	}
	ev.Status = StatusCode(e)
	e.denied = &ev
	return e
}

// recordDenial makes the audit event of a denial durable (outside any
// transaction) and returns err; if the event cannot be recorded, the
// request fails as unavailable instead.
func (s *Service) recordDenial(ctx context.Context, err error) error {
	var e *Error
	if !errors.As(err, &e) || e.denied == nil {
		return err
	}
	ev := *e.denied
	e.denied = nil
	if rerr := s.recordRead(ctx, ev); rerr != nil {
		return rerr
	}
	return e
}

// decided stamps an access event with the decision.
func decided(ev *audit.Event, d authz.Decision) {
	ev.Policies = d.Policies
	if d.Purpose != "" {
		ev.Purpose = d.Purpose
	}
}

// writeHook is called with the resource type and owner after every
// committed write (authz.Authorizer.Changed: entity caches).
type writeHook = func(typ, owner string)

// SetWriteHook installs fn, called after every committed write with the
// type and owner written ("" when not known). Set it once, before serving.
func (s *Service) SetWriteHook(fn func(typ, owner string)) { s.hook.Store(&fn) }

func (s *Service) changed(typ string, owner ident.Owner) {
	if p := s.hook.Load(); p != nil {
		(*p)(typ, string(owner))
	}
}

// SetEraseHook installs fn, called with the owner after every committed
// erasure ($erase): the KEK epoch job that makes the erasure final
// (ADR 0015) is woken by it. fn must not block. Set it once, before
// serving.
func (s *Service) SetEraseHook(fn func(owner string)) { s.eraseHook.Store(&fn) }

func (s *Service) erased(owner ident.Owner) {
	if p := s.eraseHook.Load(); p != nil {
		(*p)(string(owner))
	}
}

// maxFactRounds bounds how often a write transaction is rerun because a
// decision inside it needed facts that were not cached.
const maxFactRounds = 16

// updateTx runs fn in a write transaction whose authorization decisions
// use cached facts only (authz.WithoutIO): a transaction must not wait
// for a second database connection. When a decision misses the cache,
// the facts are loaded outside the transaction and fn runs again.
func (s *Service) updateTx(ctx context.Context, c Caller, fn func(ctx context.Context, tx storage.Tx) error) error {
	inner := authz.WithoutIO(ctx)
	for round := 1; ; round++ {
		err := s.store.Update(ctx, func(tx storage.Tx) error { return fn(inner, tx) })
		var nf *authz.NeedsFacts
		if !errors.As(err, &nf) {
			return err
		}
		if round == maxFactRounds {
			return unavailable(fmt.Errorf("authorization facts kept changing: %w", err))
		}
		if err := s.prewarm(ctx, c, nf); err != nil {
			return err
		}
	}
}

// prewarmEntries loads, before a Bundle's transaction, the facts its
// entries' decisions will need (the owners known ahead), so the
// transaction rarely reruns.
func (s *Service) prewarmEntries(ctx context.Context, c Caller, entries []*entry) {
	seen := map[string]bool{}
	for _, e := range entries {
		if e.err == nil && (e.query != "" || e.ifNoneExist != "") && !seen["?"+e.typ] {
			seen["?"+e.typ] = true
			_ = s.prewarm(ctx, c, &authz.NeedsFacts{Filter: e.typ})
		}
		var owner ident.Owner
		switch {
		case e.err != nil:
			continue
		case e.prep != nil:
			owner = e.prep.v.Owner
		case e.res != nil:
			owner, _, _ = s.ownerOf(ctx, nil, e.res)
		case e.id != "":
			if v, err := s.store.Current(ctx, e.typ, e.id); err == nil {
				owner = v.Owner
			}
		}
		if owner != "" && !seen[string(owner)] {
			seen[string(owner)] = true
			_ = s.prewarm(ctx, c, &authz.NeedsFacts{Owner: string(owner)})
		}
	}
}

// prewarm loads what a decision under WithoutIO missed, by deciding
// once outside the transaction (the answer itself is not used here).
func (s *Service) prewarm(ctx context.Context, c Caller, nf *authz.NeedsFacts) error {
	owner := nf.Owner
	if owner == "" {
		owner = string(OrgOwner)
	}
	if _, err := c.guard().Decide(ctx, authz.Read, authz.Target{Type: "Patient", Owner: owner}); err != nil && !errors.Is(err, authz.ErrDenied) {
		return s.prewarmErr(c, err)
	}
	if nf.Filter != "" {
		if _, err := c.guard().Narrow(ctx, authz.Search, nf.Filter); err != nil {
			return s.prewarmErr(c, err)
		}
	}
	return nil
}

func (s *Service) prewarmErr(c Caller, err error) error {
	return s.denial(c, audit.ActionSearch, storage.Version{}, authz.Decision{Policies: []string{"undecidable"}}, err)
}

// versionReader reads one stored version (the store, or a write
// transaction) and what opening it needs.
type versionReader interface {
	keyedReader
	VersionOf(ctx context.Context, typ, id string, version int64) (storage.Version, error)
}

// decisionBody returns the body a decision about version v reads its
// labels from: v's own, or, for a delete marker, that of the last live
// version before it. A deleted record keeps the protection its labels
// gave it: deleting a record labelled sensitive since must not reopen an
// older, unlabelled version, nor tell a caller it may not see that the
// record existed (410 instead of 404). nil when no version is readable
// (an erased patient's: nothing is served then anyway).
func (s *Service) decisionBody(ctx context.Context, rd versionReader, v storage.Version) ([]byte, error) {
	for range maxDecisionWalk {
		if !v.Deleted {
			body, err := s.openWith(ctx, rd, v)
			if errors.Is(err, ErrGone) {
				return nil, nil
			}
			return body, err
		}
		if v.Version <= 1 {
			return nil, nil
		}
		prev, err := rd.VersionOf(ctx, v.Type, v.ID, v.Version-1)
		if err != nil {
			return nil, storageError(err)
		}
		v = prev
	}
	return nil, fmt.Errorf("deciding on %s/%s: more than %d delete markers in a row: %w", v.Type, v.ID, maxDecisionWalk, authz.ErrUndecidable)
}

// maxDecisionWalk bounds the delete markers decisionBody steps over
// (deleting a deleted resource writes none: two in a row are rare).
const maxDecisionWalk = 64

// openWith decrypts v through rd: a write transaction's key read, or
// the store's cached keys.
func (s *Service) openWith(ctx context.Context, rd keyedReader, v storage.Version) ([]byte, error) {
	if tx, ok := rd.(storage.Tx); ok {
		return s.openInTx(ctx, tx, v)
	}
	return s.open(ctx, v)
}

// eventPatients are the patients an audit event about a version of
// owner names: the patient, or every patient of a joint owner (whose
// decision loaded them).
func (s *Service) eventPatients(owner ident.Owner) []string {
	ps, err := s.patientsOf(context.Background(), cachedOnly{}, owner)
	if err != nil {
		return nil
	}
	return ownerStrings(ps)
}

// cachedOnly is a memberReader that reads nothing: eventPatients uses
// the cache filled by the decision on the same version.
type cachedOnly struct{}

func (cachedOnly) JointMembers(context.Context, ident.Owner) ([]ident.Owner, error) {
	return nil, storage.ErrNotFound
}

// openInTx decrypts v with the key read through tx (no second connection).
func (s *Service) openInTx(ctx context.Context, tx storage.Tx, v storage.Version) ([]byte, error) {
	dek, err := s.dekInTx(ctx, tx, v.Owner, nil, false)
	if errors.Is(err, keys.ErrDecrypt) && !s.keys.KEK().IsKMS() {
		return nil, tamperedError(v, err) // the key record does not open
	}
	if err != nil {
		return nil, err
	}
	pt, err := dek.Open(v.Ciphertext, keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: v.Owner})
	if err != nil {
		return nil, tamperedError(v, err)
	}
	return pt, nil
}
