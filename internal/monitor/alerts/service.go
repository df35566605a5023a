package alerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/storage"
)

// Errors.
var (
	// ErrForbidden: the actor may not do this; the refusal was audited.
	// Answer 403.
	ErrForbidden = errors.New("monitoring is for privacy officers")
	// ErrInvalid: the request is malformed (an unknown status, an empty
	// reason, a bad source name); the message says what. Answer 400.
	ErrInvalid = errors.New("invalid monitoring request")
	// ErrNotFound: no such alert. Answer 404.
	ErrNotFound = errors.New("no such alert")
	// ErrOwnAlert: the alert is about the actor (its user is their
	// account or the Practitioner it is bound to): separation of duties
	// leaves its decision, suppression and assignment to another
	// officer; the refusal was audited. It wraps ErrForbidden (403).
	ErrOwnAlert = fmt.Errorf("%w: this alert is about your own account, so another officer must decide, suppress or take it", ErrForbidden)
)

// Sealer seals and opens monitoring data ([KeySealer] in the
// application): kind names the table, id the row and part the field.
type Sealer interface {
	Seal(ctx context.Context, kind, id string, part int64, text []byte) ([]byte, error)
	Open(ctx context.Context, kind, id string, part int64, sealed []byte) ([]byte, error)
}

// MAC computes keyed MACs of references (keys.Keyring.BlindIndex).
type MAC interface {
	BlindIndex(input string) ([]byte, error)
}

// Account is what the service needs of an account: its roles and the
// FHIR user it is bound to ("Practitioner/<id>"), "" if none.
type Account struct {
	Roles    []string
	FHIRUser string
}

// Accounts looks accounts up by id (identity.Directory in the
// application): the actor of a triage (is the alert about them?) and
// the author of a suppression rule (what may they triage?). An unknown
// id is the zero Account and no error.
type Accounts interface {
	Account(ctx context.Context, id string) (Account, error)
}

// Updater runs fn in one write transaction (sqldb.NewUnit[storage.MonitorTx]).
type Updater interface {
	Update(ctx context.Context, fn func(storage.MonitorTx) error) error
}

// Roles that may use monitoring.
const (
	RolePrivacyOfficer = "privacy-officer"
	RoleSecurityAdmin  = "security-admin"
)

// Actor is who acts, as the audit event records it, and the roles that
// authorize them.
type Actor struct {
	Agent     audit.Agent
	Roles     []string
	Purpose   string
	RequestID string
	Status    int // the status the front end answers with on success
}

// Offline is the actor of the offline CLI ("phivault monitor ... --data"):
// whoever holds the data directory and its keys acts as the privacy
// office, recorded as the client "cli".
func Offline() Actor {
	return Actor{Agent: audit.Agent{Client: "cli"}, Roles: []string{RolePrivacyOfficer}}
}

// system is the agent of alerts raised by the engine.
var systemAgent = audit.Agent{User: "phivault", Client: "monitor"}

// Options configures [New]. Tx, Store, Seal, MAC, Log and Accounts are
// required.
type Options struct {
	Tx       Updater
	Store    storage.MonitorReader
	Seal     Sealer
	MAC      MAC
	Log      *audit.Log
	Accounts Accounts
	Now      func() time.Time // default time.Now
	Rand     io.Reader        // ids; default crypto/rand
}

// Service stores and triages alerts. Safe for concurrent use.
type Service struct {
	tx    Updater
	store storage.MonitorReader
	seal  Sealer
	mac   MAC
	log   *audit.Log
	accts Accounts
	now   func() time.Time
	rand  io.Reader
}

// New validates o and returns the service. Errors name the field.
func New(o Options) (*Service, error) {
	switch {
	case o.Tx == nil:
		return nil, errors.New("alerts: Options.Tx is nil")
	case o.Store == nil:
		return nil, errors.New("alerts: Options.Store is nil")
	case o.Seal == nil:
		return nil, errors.New("alerts: Options.Seal is nil")
	case o.MAC == nil:
		return nil, errors.New("alerts: Options.MAC is nil")
	case o.Log == nil:
		return nil, errors.New("alerts: Options.Log is nil")
	case o.Accounts == nil:
		return nil, errors.New("alerts: Options.Accounts is nil")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return &Service{tx: o.Tx, store: o.Store, seal: o.Seal, mac: o.MAC, log: o.Log, accts: o.Accounts, now: o.Now, rand: o.Rand}, nil
}

// Sealed kinds (the associated data's kind) and parts.
const (
	kindAlert       = "MonitorAlert"
	kindNote        = "MonitorNote"
	kindSuppression = "MonitorSuppression"
	kindChunk       = "MonitorChunk"
)

// attack are the categories a security administrator triages.
var attack = []monitor.Category{monitor.CatCredential, monitor.CatMFA, monitor.CatToken,
	monitor.CatEnumeration, monitor.CatDenied, monitor.CatSession}

// IsAttack reports whether c is an attack category (a security
// administrator's).
func IsAttack(c string) bool { return slices.Contains(attack, monitor.Category(c)) }

// access is what an actor may do.
type access int

const (
	none access = iota
	attacksOnly
	all
)

func accessOf(a Actor) access {
	switch {
	case slices.Contains(a.Roles, RolePrivacyOfficer):
		return all
	case slices.Contains(a.Roles, RoleSecurityAdmin):
		return attacksOnly
	}
	return none
}

// accessOfAuthor is what the author of a suppression rule may triage
// now: the offline CLI ("cli", never an account id) the whole privacy
// office, an account by its current roles, an unknown author nothing.
func (s *Service) accessOfAuthor(ctx context.Context, author string, cache map[string]access) (access, error) {
	if x, ok := cache[author]; ok {
		return x, nil
	}
	x := all
	if author != Offline().Agent.Client {
		acc, err := s.accts.Account(ctx, author)
		if err != nil {
			return none, fmt.Errorf("looking up the author of a suppression rule: %w", err)
		}
		x = accessOf(Actor{Roles: acc.Roles})
	}
	cache[author] = x
	return x, nil
}

// about reports whether alert a is about account (its user is
// "User/<account>" or the Practitioner the account is bound to): the
// account may not decide, suppress or take it (separation of duties).
func (s *Service) about(ctx context.Context, account string, a monitor.Alert) (bool, error) {
	if account == "" || a.User == "" {
		return false, nil
	}
	if a.User == "User/"+account {
		return true, nil
	}
	acc, err := s.accts.Account(ctx, account)
	if err != nil {
		return false, fmt.Errorf("looking up an account: %w", err)
	}
	return acc.FHIRUser != "" && a.User == acc.FHIRUser, nil
}

// may reports whether a may see or change an alert of category.
func (x access) may(category string) bool {
	return x == all || (x == attacksOnly && IsAttack(category))
}

// refuse audits a refused attempt of action and returns ErrForbidden
// (or the audit log's failure).
func (s *Service) refuse(ctx context.Context, by Actor, action audit.Action, entities ...string) error {
	ev := audit.Event{Time: s.now().UTC(), Action: action, Outcome: audit.OutcomeDenied, Agent: by.Agent,
		Purpose: by.Purpose, Entities: entities, RequestID: by.RequestID, Status: 403}
	if err := s.record(ctx, nil, ev); err != nil {
		return err
	}
	return ErrForbidden
}

// refuseOwn audits the refusal of action on alert id about the actor
// (Policies "refused=own-alert") and returns ErrOwnAlert.
func (s *Service) refuseOwn(ctx context.Context, by Actor, action audit.Action, id string) error {
	ev := audit.Event{Time: s.now().UTC(), Action: action, Outcome: audit.OutcomeDenied, Agent: by.Agent,
		Purpose: by.Purpose, Entities: []string{"MonitorAlert/" + id}, Policies: []string{"refused=own-alert"},
		RequestID: by.RequestID, Status: 403}
	if err := s.record(ctx, nil, ev); err != nil {
		return err
	}
	return ErrOwnAlert
}

// record appends evs in one transaction, after fn (nil: none) in it.
func (s *Service) record(ctx context.Context, fn func(storage.MonitorTx) error, evs ...audit.Event) error {
	recs := make([]storage.AuditRecord, 0, len(evs))
	for _, ev := range evs {
		rec, err := s.log.Seal(ev)
		if err != nil {
			return fmt.Errorf("%w: %v", audit.ErrUnavailable, err)
		}
		recs = append(recs, rec)
	}
	err := s.tx.Update(ctx, func(t storage.MonitorTx) error {
		if fn != nil {
			if err := fn(t); err != nil {
				return err
			}
		}
		return t.AppendAudit(ctx, recs...)
	})
	return unrecorded(err)
}

// unrecorded marks an unavailable store's failure as the audit log's
// too: the change and its event were written together, so neither was.
func unrecorded(err error) error {
	if err != nil && errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, audit.ErrUnavailable) {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	return err
}

// newID draws an id: 128 random bits, hex.
func (s *Service) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("drawing an id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Domains of the MACs: a MAC of one kind never equals one of another.
const (
	macAlert   = "monitor-alert"
	macPatient = "monitor-patient"
	macUser    = "monitor-user"
)

// macOf is the MAC of ref of source in domain.
func (s *Service) macOf(domain, source, ref string) ([]byte, error) {
	m, err := s.mac.BlindIndex(domain + "\x00" + source + "\x00" + ref)
	if err != nil {
		return nil, fmt.Errorf("computing a monitoring key: %w", err)
	}
	return m, nil
}

// SourcePhivault is the source name of phivault's own audit log; an
// ingest may not take it.
const SourcePhivault = "phivault"
