package record

import (
	"context"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// The ledger (ADR 0016): the audit event of every change to stored
// resources commits to what it stored, so "phivault verify" proves the
// database is what the signed log says. Every path that changes a
// version row, a current pointer or index rows goes through one of the
// functions below, in the same transaction as the change.

// errNoLedger fails a write when no ledger key was given: a write that
// the log cannot commit to would later look like tampering.
var errNoLedger = errors.New("record: the ledger key is not loaded")

// putCommit is the commitment of version v, stored with plaintext body
// and index rows (p is nil for a delete marker, which has neither). The
// commitment prepareVersion computed, outside the transaction, serves
// when it is of the same version.
func (s *Service) putCommit(v storage.Version, p *pending) (audit.Commit, error) {
	if s.ledger == nil {
		return audit.Commit{}, unavailable(errNoLedger)
	}
	if p != nil && p.commit.Version != nil && p.v.Type == v.Type && p.v.ID == v.ID && p.v.Version == v.Version &&
		p.v.Owner == v.Owner && p.v.LastUpdated.Equal(v.LastUpdated) && !v.Deleted {
		return p.commit, nil
	}
	c := audit.Commit{Kind: audit.CommitPut, Ref: entityRef(v.Type, v.ID, v.Version), Owner: string(v.Owner), Deleted: v.Deleted}
	if v.Deleted || p == nil {
		c.Version = s.ledger.Version(v, nil)
		return c, nil
	}
	c.Version = s.ledger.Version(v, p.body)
	c.Index = s.ledger.Index(v.Type, v.ID, p.rows)
	return c, nil
}

// indexCommit is the commitment of the index rows of typ/id/version,
// replaced without a new version (reindex).
func (s *Service) indexCommit(typ, id string, version int64, owner ident.Owner, rows []storage.IndexRow) (audit.Commit, error) {
	if s.ledger == nil {
		return audit.Commit{}, unavailable(errNoLedger)
	}
	return audit.Commit{Kind: audit.CommitIndex, Ref: entityRef(typ, id, version), Owner: string(owner), Index: s.ledger.Index(typ, id, rows)}, nil
}

// ownerCommits keys the commitments cs to stored versions and index rows
// (put, index, rewrite) with their owners' ledger keys (ADR 0016,
// amendment), read in tx: a commitment keyed with the system key alone
// would let whoever holds the key file confirm a guess of an erased
// patient's content. It is the last step before the event is sealed.
func (s *Service) ownerCommits(ctx context.Context, tx storage.Tx, cs []audit.Commit) error {
	byOwner := map[string]*keys.OwnerLedger{}
	for i := range cs {
		c := &cs[i]
		switch c.Kind {
		case audit.CommitPut, audit.CommitIndex, audit.CommitRewrite, audit.CommitBaseline:
		default:
			continue
		}
		if c.Scheme != 0 || c.Owner == "" {
			continue
		}
		ol, ok := byOwner[c.Owner]
		if !ok {
			var err error
			ol, err = s.ownerLedgerInTx(ctx, tx, ident.Owner(c.Owner))
			if err != nil && !(c.Kind == audit.CommitBaseline && errors.Is(err, ErrGone)) {
				return err
			}
			byOwner[c.Owner] = ol
		}
		if ol == nil {
			continue // a baseline of an erased owner's version: no content, no key
		}
		if c.Version != nil {
			c.Version = ol.Commit(c.Version)
		}
		if c.Index != nil {
			c.Index = ol.Commit(c.Index)
		}
		c.Scheme = audit.CommitSchemeOwner
	}
	return nil
}

// KeyCommits keys commitments that a job outside the record service
// appends in tx ("phivault verify --baseline") as ownerCommits does; a
// baseline commitment of an erased owner's version stays system-keyed
// (it commits to no content).
func (s *Service) KeyCommits(ctx context.Context, tx storage.Tx, cs []audit.Commit) error {
	return s.ownerCommits(ctx, tx, cs)
}

// ownerLedgerInTx returns owner's ledger key, read in tx; a key record
// made before owner ledger keys gets its secret now (once: a concurrent
// transaction that set one first wins, and this one reads it).
func (s *Service) ownerLedgerInTx(ctx context.Context, tx storage.Tx, owner ident.Owner) (*keys.OwnerLedger, error) {
	rec, err := tx.Key(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("loading the ledger key of %s: %w", owner, err)
	}
	if rec.Shredded {
		return nil, gone("this patient's record was erased")
	}
	if rec.Ledger == nil {
		withSecret, err := s.keys.AddLedgerSecret(rec)
		if err != nil {
			return nil, unavailable(fmt.Errorf("creating the ledger key of %s: %w", owner, err))
		}
		set, err := tx.SetLedgerSecret(ctx, owner, withSecret.Ledger)
		if err != nil {
			return nil, err
		}
		if set {
			rec = withSecret
		} else if rec, err = tx.Key(ctx, owner); err != nil {
			return nil, fmt.Errorf("loading the ledger key of %s: %w", owner, err)
		}
	}
	ol, err := s.keys.OwnerLedger(rec)
	if err != nil {
		return nil, unavailable(fmt.Errorf("opening the ledger key of %s: %w", owner, err))
	}
	return ol, nil
}

// eraseCommit commits the destruction of owner's key and the delete
// markers that Tx.Shred appends in the same transaction.
func eraseCommit(owner ident.Owner) audit.Commit {
	return audit.Commit{Kind: audit.CommitErase, Ref: string(owner)}
}

// Rewritten is one stored version that a maintenance job rewrote in
// place (same type, id and version; a new owner or ciphertext), for
// [Service.CommitRewrites].
type Rewritten struct {
	// Version is the row as rewritten (Ciphertext is not used).
	Version storage.Version
	// Body is its plaintext (nil for a delete marker).
	Body []byte
	// Current reports that it is the resource's current version; Index
	// are then its index rows as stored after the rewrite.
	Current bool
	Index   []storage.IndexRow
}

// CommitRewrites appends to tx the ledger events of versions that a
// maintenance job (job names it, e.g. "re-own") rewrote in place in the
// same transaction: one event per [audit.MaxCommitsPerEvent] versions,
// action [audit.ActionLedgerRewrite], carrying the new commitments.
// Without it "phivault verify" reports each rewritten version as
// differing from the log. It fails closed (503) when the events cannot
// be sealed or appended.
func (s *Service) CommitRewrites(ctx context.Context, tx storage.Tx, c Caller, job string, rs []Rewritten) error {
	if s.ledger == nil {
		return unavailable(errNoLedger)
	}
	for len(rs) > 0 {
		n := min(len(rs), audit.MaxCommitsPerEvent)
		ev := s.event(c, audit.ActionLedgerRewrite)
		ev.Policies = []string{"job=" + job}
		for _, r := range rs[:n] {
			v := r.Version
			cm := audit.Commit{Kind: audit.CommitRewrite, Ref: entityRef(v.Type, v.ID, v.Version), Owner: string(v.Owner), Deleted: v.Deleted,
				Version: s.ledger.Version(v, r.Body)}
			if r.Current && !v.Deleted {
				cm.Index = s.ledger.Index(v.Type, v.ID, r.Index)
			}
			ev.Ledger = append(ev.Ledger, cm)
			ps, err := s.patientsOf(ctx, tx, v.Owner)
			if err != nil {
				return err
			}
			ev.Touch(cm.Ref, ownerStrings(ps)...)
		}
		if err := s.ownerCommits(ctx, tx, ev.Ledger); err != nil {
			return err
		}
		rec, err := s.log.Seal(ev)
		if err != nil {
			return unavailable(err)
		}
		if err := appendAudit(ctx, tx, rec); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// IndexRows recomputes the index rows of a stored version of type typ
// with plaintext body, as a write computes them: "phivault verify" uses
// it to name the parameters whose stored rows differ from the committed
// ones.
func (s *Service) IndexRows(typ string, body []byte) ([]storage.IndexRow, error) {
	res, err := s.Parse(body)
	if err != nil {
		return nil, err
	}
	if res.Type() != typ {
		return nil, invalid("the body is not of the expected type")
	}
	rows, err := s.indexRows(res)
	if err != nil {
		return nil, err
	}
	lrows, err := s.labelRows(typ, body)
	if err != nil {
		return nil, err
	}
	return append(rows, lrows...), nil
}
