package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/deid"
	"github.com/phivault/phivault/internal/record"
)

// PurposeResearch is the v3 PurposeOfUse a de-identified export is
// audited with.
const PurposeResearch = "HRESCH"

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
func (a *App) ExportDeidentified(ctx context.Context, user string, x DeidentifiedExport) (DeidentifiedResult, error) {
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
