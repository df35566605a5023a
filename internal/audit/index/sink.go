package index

import (
	"context"

	"github.com/phivault/phivault/internal/audit/export"
)

// SinkName is the cursor name of the index. Configured export sinks
// cannot take it (their names start with a letter).
const SinkName = "_index"

// Sink stores the terms of each exported batch in one transaction. Run
// it with an unredacted export.Exporter.
type Sink struct {
	store Store
	blind Blinder
}

// NewSink returns the index sink.
func NewSink(st Store, b Blinder) *Sink { return &Sink{store: st, blind: b} }

// Name implements export.Sink.
func (s *Sink) Name() string { return SinkName }

// Send implements export.Sink.
func (s *Sink) Send(ctx context.Context, batch []export.Record) error {
	var rows []Row
	for _, r := range batch {
		ts, err := Terms(s.blind, r.Event)
		if err != nil {
			return err
		}
		for _, t := range ts {
			rows = append(rows, Row{Index: r.Index, Term: t, At: r.Event.Time})
		}
	}
	return s.store.PutAuditTerms(ctx, rows)
}

// Close implements export.Sink.
func (s *Sink) Close() error { return nil }
