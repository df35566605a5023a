package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/deid"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/record"
)

// PurposeResearch is the v3 PurposeOfUse a de-identified export is
// audited with.
const PurposeResearch = "HRESCH"

// MaxDateShiftDays bounds DeidentifiedExport.DateShiftDays
// (deid.MaxDateShiftDays), for front ends to check their flags.
const MaxDateShiftDays = deid.MaxDateShiftDays

// ErrExportRequest means a de-identified export was asked with a bad
// option: an unknown or non-exportable resource type, or a date shift
// out of range. Its text names the option and says what is allowed;
// nothing was read.
var ErrExportRequest = errors.New("invalid export request")

// CheckDeidentifiedExport checks x's types and date shift before any
// work: every type must be an R4 resource type that can be
// de-identified (Binary cannot: its content is opaque bytes), and the
// shift must be 0..MaxDateShiftDays. Errors wrap ErrExportRequest.
func CheckDeidentifiedExport(x DeidentifiedExport) error {
	for _, t := range x.Types {
		switch {
		case t == "Binary":
			return fmt.Errorf("%w: type Binary cannot be de-identified (its content is opaque bytes); leave it out", ErrExportRequest)
		case !fhir.IsStorableType(t):
			return fmt.Errorf("%w: %q is not a FHIR R4 resource type the store holds (types are case-sensitive, e.g. Patient,Observation)", ErrExportRequest, t)
		}
	}
	if x.DateShiftDays < 0 || x.DateShiftDays > MaxDateShiftDays {
		return fmt.Errorf("%w: the date shift must be between 0 and %d days", ErrExportRequest, MaxDateShiftDays)
	}
	return nil
}

// DeidentifiedExport asks for a de-identified export of the whole store
// (ADR 0050).
type DeidentifiedExport struct {
	Types         []string // resource types to export; none: all
	DateShiftDays int      // 0: Safe Harbor (years only); else deid.Options.DateShiftDays
	// Write receives each de-identified resource (one JSON object,
	// without a newline). Resources the transformer leaves out never
	// reach it.
	Write func(typ string, body []byte) error
	// Progress (optional) is called with the number of resources read.
	Progress func(n int64)
}

// DeidentifiedResult says what an export did, in counts.
type DeidentifiedResult struct {
	Read     int64       // current resources read
	Patients int         // patients whose data was read (each named in the audit events)
	Report   deid.Report // written, dropped and removed, per type and reason
}

// ExportDeidentified reads every current resource through the offline
// operator user, de-identifies it with a new deid.Transformer (a fresh
// pseudonym key that dies with it) and passes it to x.Write, then
// audits the export (action export, purpose HRESCH, every patient
// named). Publish what Write produced only after it returns nil.
//
// user names the operator in the audit events (the CLI passes the
// operating-system account that ran it). x is checked first
// (CheckDeidentifiedExport): a bad request reads nothing.
func (a *App) ExportDeidentified(ctx context.Context, user string, x DeidentifiedExport) (DeidentifiedResult, error) {
	if err := CheckDeidentifiedExport(x); err != nil {
		return DeidentifiedResult{}, err
	}
	t, err := deid.New(deid.Options{DateShiftDays: x.DateShiftDays})
	if err != nil {
		return DeidentifiedResult{}, err
	}
	method := "deidentified=safe-harbor"
	if x.DateShiftDays > 0 {
		method = fmt.Sprintf("deidentified=date-shift-%dd", x.DateShiftDays)
	}
	sum, err := a.Operator(user).Export(ctx, record.ExportRequest{
		Types:    x.Types,
		Purpose:  PurposeResearch,
		Policies: []string{method},
		Progress: x.Progress,
		Write: func(typ string, body []byte) error {
			out, err := t.Transform(typ, body)
			if errors.Is(err, deid.ErrDropped) || errors.Is(err, deid.ErrInput) {
				return nil // left out, counted in the report
			}
			if err != nil {
				return err
			}
			return x.Write(typ, out)
		},
	})
	return DeidentifiedResult{Read: sum.Resources, Patients: len(sum.Patients), Report: t.Report()}, err
}
