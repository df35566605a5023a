package merkle_test

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit/merkle"
)

// readerSource serves a Reader as a monitor Source (in-process; the
// HTTP path is tested in package cli and httpapi).
type readerSource struct{ r *merkle.Reader }

func (s readerSource) Checkpoint(ctx context.Context) ([]byte, error) {
	c, err := s.r.Checkpoint(ctx)
	return c.Note, err
}

func (s readerSource) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) { return s.r.Tile(ctx, t) }

// switchSource lets a test swap the log behind the monitor's back.
type switchSource struct{ cur merkle.Source }

func (s *switchSource) Checkpoint(ctx context.Context) ([]byte, error) { return s.cur.Checkpoint(ctx) }
func (s *switchSource) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	return s.cur.Tile(ctx, t)
}

// TestMonitorAlarms shows a monitor a log that grows honestly, then
// logs signed with the same key that were rolled back, forked or
// rewritten, and one signed with another key.
func TestMonitorAlarms(t *testing.T) {
	c := newCrypt(t)
	// build makes a log of n events (from a distinct range, so different
	// leaves) signed with signer c.
	build := func(c *crypt, from, n int) (*merkle.Reader, func(int)) {
		d := openSQLite(t)
		in := c.integrator(t, d.st)
		c.appendEvents(t, d.st, from, from+n)
		if _, err := in.IntegrateAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		grow := func(m int) {
			c.appendEvents(t, d.st, from+n, from+n+m)
			n += m
			if _, err := in.IntegrateAll(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		return merkle.NewReader(d.st.TLog(), c.log), grow
	}
	honest, grow := build(c, 0, 300)
	src := &switchSource{cur: readerSource{honest}}
	v, err := merkle.NewVerifier(c.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	m := merkle.NewMonitor(src, testOrigin, v)
	st, err := m.Check(t.Context(), nil)
	if err != nil || st.Size != 300 {
		t.Fatalf("first check: %+v %v", st, err)
	}
	grow(50)
	st2, err := m.Check(t.Context(), &st)
	if err != nil || st2.Size != 350 {
		t.Fatalf("honest growth: %+v %v", st2, err)
	}
	if st3, err := m.Check(t.Context(), &st2); err != nil || st3 != st2 {
		t.Fatalf("no growth: %+v %v", st3, err)
	}

	rolled, _ := build(c, 0, 100)
	forked, _ := build(c, 10_000, 350)
	rewritten, _ := build(c, 20_000, 400)
	impostor, _ := build(newCrypt(t), 0, 400)
	tests := []struct {
		name string
		log  *merkle.Reader
		want error
	}{
		{"rolled back", rolled, merkle.ErrRollback},
		{"forked", forked, merkle.ErrFork},
		{"rewritten", rewritten, merkle.ErrRewrite},
		{"signed by another key", impostor, merkle.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src.cur = readerSource{tt.log}
			got, err := m.Check(t.Context(), &st2)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check: %v, want %v", err, tt.want)
			}
			if got != st2 {
				t.Errorf("state after an alarm: %+v, want the previous one kept", got)
			}
		})
	}
}
