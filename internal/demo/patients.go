package demo

import (
	"context"
	"fmt"

	"github.com/phivault/phivault/internal/synth"
)

// LoadPatients generates n synthetic patients (and the organisation's
// bundle) with a fixed seed and stores each bundle through op, audited
// as the operator's import; progress, if set, is called after each.
func LoadPatients(ctx context.Context, op Operator, n int, progress func()) error {
	err := synth.Generate(ctx, synth.Options{Patients: n, Seed: 1, Start: synth.DefaultStart}, func(_ string, b []byte) error {
		if _, err := op.ImportBundle(ctx, b); err != nil {
			return err
		}
		if progress != nil {
			progress()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading demo patients: %w", err)
	}
	return nil
}
