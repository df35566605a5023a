package bulk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/phivault/phivault/internal/keys"
)

// Reasons a resource or patient was left out, for the error file: counts
// only, never an identifier (the file goes to the client, and a patient
// left out by their consent must not be named to it).
const (
	reasonUnreadable       = "resources could not be read (stored data failed its integrity check) and were left out"
	reasonSearchRefused    = "searches (a resource type or _typeFilter query) could not be run and were left out"
	reasonPatientUndecided = "patient compartments could not be decided (an undecidable consent or policy) and were left out"
	reasonTransform        = "resources could not be de-identified and were left out"
	reasonGroupUnreadable  = "the Group could not be read: no member was exported"
	reasonMemberInactive   = "Group members were left out (inactive, outside their membership period, or not a Patient reference)"
	reasonDeletedUndecided = "resource types' deletions since _since could not be listed and were left out of the deleted files"
)

// policyNotice is always in the error file: what an export leaves out
// by design, so the recipient knows the data is narrowed.
const policyNotice = "resources are exported only as disclosures for the client's registered purpose of use: records of patients " +
	"whose consent does not permit it, and sensitive (R, V, PSY, HIV, ETH, SDV) and 42 CFR Part 2 records without a consent " +
	"permitting them, are left out and not counted"

// writer buffers NDJSON lines per resource type and seals a file when a
// type's buffer reaches FileBytes, or when all buffers together reach
// twice that (so memory stays bounded whatever the number of types).
type writer struct {
	s         *Service
	j         Job
	key       *keys.ExportKey
	transform Transformer

	n        int // last file number used
	bufs     map[string]*bytes.Buffer
	counts   map[string]int
	total    int
	exported int
	seen     map[string]bool // "Type/id" written (patient and group level)
	skipped  map[string]int
	deleted  bytes.Buffer // transaction Bundles of deletions (the manifest's deleted)
	nDeleted int
	// nDeletedTotal counts every deletion written (progress).
	nDeletedTotal int
}

func newWriter(s *Service, j Job, key *keys.ExportKey) *writer {
	return &writer{s: s, j: j, key: key, bufs: map[string]*bytes.Buffer{}, counts: map[string]int{},
		seen: map[string]bool{}, skipped: map[string]int{}}
}

func (w *writer) skip(reason string) { w.skipped[reason]++ }

// written reports whether Type/id was written already, and marks it.
func (w *writer) written(typ, id string) bool {
	k := typ + "/" + id
	if w.seen[k] {
		return true
	}
	w.seen[k] = true
	return false
}

// add writes one resource as a line of its type's output.
func (w *writer) add(ctx context.Context, typ string, body []byte) error {
	if w.transform != nil {
		out, err := w.transform.Transform(typ, body)
		if err != nil {
			w.skip(reasonTransform)
			return nil
		}
		if out == nil {
			return nil
		}
		body = out
	}
	b := w.bufs[typ]
	if b == nil {
		b = &bytes.Buffer{}
		w.bufs[typ] = b
	}
	n := b.Len()
	if err := json.Compact(b, body); err != nil {
		b.Truncate(n)
		w.skip(reasonUnreadable)
		return nil
	}
	b.WriteByte('\n')
	w.counts[typ]++
	w.exported++
	w.total += b.Len() - n
	if b.Len() >= w.s.o.FileBytes {
		return w.flush(ctx, typ)
	}
	if w.total >= 2*w.s.o.FileBytes {
		return w.flushAll(ctx)
	}
	return nil
}

// flush seals and stores typ's buffered lines as one file.
func (w *writer) flush(ctx context.Context, typ string) error {
	b := w.bufs[typ]
	if b == nil || b.Len() == 0 {
		return nil
	}
	if err := w.put(ctx, File{Kind: KindOutput, Type: typ, Count: w.counts[typ]}, b.Bytes()); err != nil {
		return err
	}
	w.total -= b.Len()
	b.Reset()
	w.counts[typ] = 0
	return nil
}

func (w *writer) flushAll(ctx context.Context) error {
	types := make([]string, 0, len(w.bufs))
	for t := range w.bufs {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		if err := w.flush(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) put(ctx context.Context, f File, plain []byte) error {
	w.n++
	f.N = w.n
	ct, err := w.key.Seal(f.N, plain)
	if err != nil {
		return err
	}
	return w.s.o.Store.PutFile(ctx, w.j.ID, w.s.o.Holder, f, ct)
}

// addDeleted writes the deletion of typ/id: a line holding a FHIR
// transaction Bundle with one DELETE entry (Bulk Data IG v2, deleted).
func (w *writer) addDeleted(ctx context.Context, typ, id string) error {
	type entry struct {
		Request struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"request"`
	}
	var e entry
	e.Request.Method, e.Request.URL = "DELETE", typ+"/"+id
	line, err := json.Marshal(struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Entry        []entry `json:"entry"`
	}{"Bundle", "transaction", []entry{e}})
	if err != nil {
		return err
	}
	w.deleted.Write(line)
	w.deleted.WriteByte('\n')
	w.nDeleted++
	w.nDeletedTotal++
	if w.deleted.Len() >= w.s.o.FileBytes {
		return w.flushDeleted(ctx)
	}
	return nil
}

// flushDeleted seals and stores the buffered deletions as one file.
func (w *writer) flushDeleted(ctx context.Context) error {
	if w.nDeleted == 0 {
		return nil
	}
	if err := w.put(ctx, File{Kind: KindDeleted, Type: "Bundle", Count: w.nDeleted}, w.deleted.Bytes()); err != nil {
		return err
	}
	w.deleted.Reset()
	w.nDeleted = 0
	return nil
}

// finish writes what is buffered and the error file.
func (w *writer) finish(ctx context.Context) error {
	if err := w.flushAll(ctx); err != nil {
		return err
	}
	if err := w.flushDeleted(ctx); err != nil {
		return err
	}
	var b bytes.Buffer
	line := func(severity, code, text string) error {
		oo := map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{
			"severity": severity, "code": code, "diagnostics": text}}}
		enc, err := json.Marshal(oo)
		if err != nil {
			return err
		}
		b.Write(enc)
		b.WriteByte('\n')
		return nil
	}
	count := 1
	if err := line("information", "informational", policyNotice); err != nil {
		return err
	}
	reasons := make([]string, 0, len(w.skipped))
	for r := range w.skipped {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		if err := line("warning", "suppressed", fmt.Sprintf("%d %s", w.skipped[r], r)); err != nil {
			return err
		}
		count++
	}
	return w.put(ctx, File{Kind: KindError, Type: "OperationOutcome", Count: count}, b.Bytes())
}
