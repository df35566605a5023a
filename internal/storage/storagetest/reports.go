package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// ReportStore is the access-report store (sqldb.Store implements it).
type ReportStore interface {
	CreateAccessReport(ctx context.Context, r storage.AccessReport) error
	OpenAccessReports(ctx context.Context, limit int) ([]storage.AccessReport, error)
	AccessReport(ctx context.Context, id string) (storage.AccessReport, error)
	CloseAccessReport(ctx context.Context, id, closer string, at time.Time, note []byte) error
}

// RunReports is the access-report conformance suite: create, list the
// open ones oldest first, close once (again: ErrConflict; unknown:
// ErrNotFound), sealed bytes kept exactly, empty comment as none.
func RunReports(t *testing.T, open func(t *testing.T) ReportStore) {
	s := open(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 123000, time.UTC)
	a := storage.AccessReport{ID: "r-a", Patient: "Patient/p1", Leaf: 42, Reporter: "u1", Created: t0, Comment: []byte{0, 1, 2, 0xff}}
	b := storage.AccessReport{ID: "r-b", Patient: "Patient/p2", Leaf: 7, Reporter: "u2", Created: t0.Add(time.Minute)}
	for _, r := range []storage.AccessReport{b, a} {
		if err := s.CreateAccessReport(ctx, r); err != nil {
			t.Fatalf("create %s: %v", r.ID, err)
		}
	}
	if err := s.CreateAccessReport(ctx, a); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("second create of r-a: %v, want ErrConflict", err)
	}
	got, err := s.OpenAccessReports(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "r-a" || got[1].ID != "r-b" {
		t.Fatalf("open reports %+v, want r-a then r-b", got)
	}
	if g := got[0]; g.Patient != a.Patient || g.Leaf != 42 || g.Reporter != "u1" || !g.Created.Equal(t0) || !bytes.Equal(g.Comment, a.Comment) || !g.Closed.IsZero() {
		t.Errorf("r-a read back as %+v", g)
	}
	if got[1].Comment != nil {
		t.Errorf("r-b comment %v, want none", got[1].Comment)
	}
	at := t0.Add(time.Hour)
	if err := s.CloseAccessReport(ctx, "r-a", "po1", at, []byte("sealed-note")); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseAccessReport(ctx, "r-a", "po1", at, nil); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("closing twice: %v, want ErrConflict", err)
	}
	if err := s.CloseAccessReport(ctx, "r-none", "po1", at, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("closing an unknown report: %v, want ErrNotFound", err)
	}
	r, err := s.AccessReport(ctx, "r-a")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Closed.Equal(at) || r.Closer != "po1" || string(r.CloseNote) != "sealed-note" {
		t.Errorf("closed report %+v", r)
	}
	if _, err := s.AccessReport(ctx, "r-none"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown report: %v, want ErrNotFound", err)
	}
	got, err = s.OpenAccessReports(ctx, 10)
	if err != nil || len(got) != 1 || got[0].ID != "r-b" {
		t.Fatalf("open reports after closing r-a: %+v, %v", got, err)
	}
}
