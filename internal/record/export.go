package record

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// exportPatientsPerEvent bounds the patients one export audit event
// names: a "Patient/<uuid>" is about 45 bytes, so 500 keep an event
// well under audit.MaxLeafSize (64 KiB).
const exportPatientsPerEvent = 500

// ExportRequest is one offline export of every current resource.
type ExportRequest struct {
	// Types limits the export to these resource types (none: all).
	Types []string
	// Purpose is the v3 PurposeOfUse recorded (HRESCH for research).
	Purpose string
	// Policies are recorded beside PolicyOffline, e.g. the
	// de-identification method ("deidentified=safe-harbor").
	Policies []string
	// Write receives each current, readable resource (its decrypted
	// JSON). Its error stops the export.
	Write func(typ string, body []byte) error
	// Progress (optional) is called after each resource with the
	// number passed to Write so far.
	Progress func(n int64)
}

// ExportSummary says what an export read.
type ExportSummary struct {
	Resources int64    // passed to Write
	Patients  []string // "Patient/<id>" of every patient whose data was passed to Write, sorted
}

// Export passes every current, non-deleted resource the store holds (of
// req.Types) to req.Write, decrypted, in (type, id) order; resources of
// erased patients are skipped. It then audits the export: action
// export, purpose req.Purpose, naming every patient whose data went out
// (in events of at most 500 patients), with the counts. Callers that
// publish what Write produced do so only after Export returns nil, so
// that nothing leaves unaudited (ADR 0050). A failed export is audited
// as an error.
func (o *Operator) Export(ctx context.Context, req ExportRequest) (ExportSummary, error) {
	s := o.s
	c := o.c
	c.Purpose = req.Purpose
	joint := map[ident.Owner][]ident.Owner{}
	err := s.store.ScanJointOwners(ctx, func(j storage.JointOwner) error {
		joint[j.Owner] = j.Members
		return nil
	})
	if err != nil {
		return ExportSummary{}, storageError(err)
	}
	patients := map[string]bool{}
	var n int64
	var prev storage.Version
	have := false
	one := func(v storage.Version) error {
		if v.Deleted || (len(req.Types) > 0 && !slices.Contains(req.Types, v.Type)) {
			return nil
		}
		body, err := s.open(ctx, v)
		if errors.Is(err, ErrGone) {
			return nil // an erased patient: nothing left to export
		}
		if err != nil {
			return fmt.Errorf("exporting %s/%s: %w", v.Type, v.ID, err)
		}
		if err := req.Write(v.Type, body); err != nil {
			return err
		}
		owners := []ident.Owner{v.Owner}
		if v.Owner.IsJoint() {
			owners = joint[v.Owner]
		}
		for _, ow := range owners {
			if id, ok := ow.PatientID(); ok {
				patients[ident.PatientRef(id).String()] = true
			}
		}
		n++
		if req.Progress != nil {
			req.Progress(n)
		}
		return nil
	}
	// Versions come in (type, id, version) order: the last of a run is
	// the current one.
	err = s.store.ScanVersions(ctx, storage.VersionRef{}, func(v storage.Version) error {
		if have && (v.Type != prev.Type || v.ID != prev.ID) {
			if err := one(prev); err != nil {
				return err
			}
		}
		prev, have = v, true
		return nil
	})
	if err == nil && have {
		err = one(prev)
	}
	sum := ExportSummary{Resources: n, Patients: make([]string, 0, len(patients))}
	for p := range patients {
		sum.Patients = append(sum.Patients, p)
	}
	slices.Sort(sum.Patients)
	if aerr := o.auditExport(ctx, c, req, sum, err); aerr != nil && err == nil {
		err = aerr
	}
	return sum, err
}

// auditExport records the export's events: one per 500 patients (one
// with none if no patient's data went out).
func (o *Operator) auditExport(ctx context.Context, c Caller, req ExportRequest, sum ExportSummary, failed error) error {
	pol := append([]string{PolicyOffline}, req.Policies...)
	pol = append(pol, "resources="+strconv.FormatInt(sum.Resources, 10), "patients="+strconv.Itoa(len(sum.Patients)))
	query := "$export"
	if len(req.Types) > 0 {
		query += "?_type=" + strings.Join(req.Types, ",")
	}
	for i := 0; i == 0 || i < len(sum.Patients); i += exportPatientsPerEvent {
		ev := o.s.event(c, audit.ActionExport)
		ev.Query = query
		ev.Policies = pol
		ev.Patients = sum.Patients[i:min(i+exportPatientsPerEvent, len(sum.Patients))]
		if failed != nil {
			ev.Outcome = audit.OutcomeError
		}
		if err := o.s.recordRead(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}
