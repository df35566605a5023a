package record

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Repairing a record. A Consent that authorization cannot read in full
// (more nested, more provisions than the parser takes) is refused when
// written; one stored before that check locks its patient's record: it
// denies every access it could bind (authz.PatientFacts.Undecidable),
// while the patient and service credentials can still change it. A
// security administrator can find such Consents and retire them (a new
// version with status "inactive"): an audited repair that never shows
// the Consent's content to the administrator. The patient sees the
// repair in their access log.

// PolicyConsentRepair is the deciding policy recorded on a repair.
const PolicyConsentRepair = "consent-repair"

// maxRepairScan bounds the Consents one listing reads.
const maxRepairScan = 100000

// UndecidableConsent names one Consent authorization cannot read.
type UndecidableConsent struct {
	ID      string      // Consent id
	Patient ident.Owner // "Patient/<id>" (its owner)
	Version int64
}

// UndecidableConsents lists up to limit current Consents that
// authorization cannot read. Finding them decrypts every Consent: the
// listing is audited (the Consents found, and their patients) under
// agent before it is returned.
func (s *Service) UndecidableConsents(ctx context.Context, agent audit.Agent, requestID string, limit int) ([]UndecidableConsent, error) {
	var out []UndecidableConsent
	const page = 500
	for off := 0; off < maxRepairScan && len(out) < limit; off += page {
		r, err := s.store.Search(ctx, storage.Query{Type: "Consent", Count: page, Offset: off, Sort: []storage.Sort{{Key: storage.SortID}}})
		if err != nil {
			return nil, storageError(err)
		}
		for _, v := range r.Versions {
			body, err := s.open(ctx, v)
			if errors.Is(err, ErrGone) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if _, err := authz.ParseConsent(body); err != nil && len(out) < limit {
				out = append(out, UndecidableConsent{ID: v.ID, Patient: v.Owner, Version: v.Version})
			}
		}
		if len(r.Versions) < page {
			break
		}
	}
	ev := audit.Event{Time: s.now(), Action: audit.ActionConsentRepair, Outcome: audit.OutcomeSuccess, Agent: agent,
		Purpose: "HOPERAT", RequestID: requestID, Policies: []string{PolicyConsentRepair, "list"}}
	for _, c := range out {
		ev.Entities = append(ev.Entities, entityRef("Consent", c.ID, c.Version))
		ev.Patients = append(ev.Patients, c.Patient.String())
	}
	if err := s.recordRead(ctx, ev); err != nil {
		return nil, err
	}
	return out, nil
}

// repairGuard allows the one write a repair makes.
type repairGuard struct{}

func (repairGuard) Decide(_ context.Context, a authz.Action, t authz.Target) (authz.Decision, error) {
	if t.Type == "Consent" && (a == authz.Update || a == authz.Read) {
		return authz.Decision{Allowed: true, Policies: []string{PolicyConsentRepair}}, nil
	}
	return authz.Decision{Policies: []string{PolicyConsentRepair}}, nil
}

func (repairGuard) Narrow(context.Context, authz.Action, string) (authz.Filter, error) {
	return authz.Filter{}, nil
}

// RepairConsent retires Consent/id, which must be one authorization
// cannot read: it stores a new version with status "inactive", audited
// as an update by agent (the security administrator) with the policy
// PolicyConsentRepair, and returns its version. A Consent authorization
// can read is refused (409: only its patient changes it); an unknown one
// is ErrNotFound. The HTTP layer admits security administrators only.
func (s *Service) RepairConsent(ctx context.Context, agent audit.Agent, requestID, id string) (int64, error) {
	c := Caller{Agent: agent, Purpose: "HOPERAT", RequestID: requestID, Guard: repairGuard{}}
	cur, err := s.store.Current(ctx, "Consent", id)
	if err != nil {
		return 0, storageError(err)
	}
	if cur.Deleted {
		return 0, gone("the Consent was deleted")
	}
	body, err := s.open(ctx, cur)
	if err != nil {
		return 0, err
	}
	if _, err := authz.ParseConsent(body); err == nil {
		return 0, fail(ErrConflict, "business-rule", "this Consent can be enforced: only its patient changes it")
	}
	res, err := s.Parse(body)
	if err != nil {
		return 0, err
	}
	res["status"] = "inactive"
	// The retired version keeps the patient's provisions as they were
	// (inactive, so never enforced): decidable() does not apply here.
	p, err := s.prepareRepair(ctx, res, cur.Version+1)
	if err != nil {
		return 0, err
	}
	var v storage.Version
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		now, err := tx.Current(ctx, "Consent", id)
		if err != nil {
			return err
		}
		if now.Version != cur.Version {
			return fail(ErrConflict, "conflict", "the Consent changed meanwhile; list and repair again")
		}
		if v, err = s.storeVersion(ctx, tx, p); err != nil {
			return err
		}
		return s.appendWriteEvent(ctx, tx, c, audit.ActionUpdate, v,
			authz.Decision{Policies: []string{PolicyConsentRepair, "version=" + strconv.FormatInt(v.Version, 10)}}, p)
	})
	if err != nil {
		return 0, storageError(err)
	}
	s.changed("Consent", v.Owner)
	return v.Version, nil
}

// prepareRepair is prepareVersion without the decidability check (the
// version written is inactive: authorization never enforces it).
func (s *Service) prepareRepair(ctx context.Context, res fhir.Resource, version int64) (*pending, error) {
	if res["status"] != "inactive" {
		return nil, fmt.Errorf("repair: the version must be inactive")
	}
	return s.prepare(ctx, nil, res, version, s.now(), false)
}
