package backup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Listed is one backup of a store.
type Listed struct {
	Name    string
	Created time.Time // from the name
	Size    int64
	// Summary is the NAME.json sidecar; nil when missing or unreadable
	// (SummaryErr says why).
	Summary    *Summary
	SummaryErr error
	HasSum     bool // NAME.sha256 exists
}

// List returns the backups in st, newest first.
func List(ctx context.Context, st Store) ([]Listed, error) {
	objs, err := st.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: listing %s: %w", st, err)
	}
	names := make(map[string]bool, len(objs))
	for _, o := range objs {
		names[o.Name] = true
	}
	var out []Listed
	for _, o := range objs {
		t, ok := IsBackupName(o.Name)
		if !ok {
			continue
		}
		l := Listed{Name: o.Name, Created: t, Size: o.Size, HasSum: names[o.Name+SumSuffix]}
		if names[o.Name+SummarySuffix] {
			s, err := ReadSummary(ctx, st, o.Name)
			if err != nil {
				l.SummaryErr = err
			} else if s.Name != o.Name {
				l.SummaryErr = fmt.Errorf("%w: the summary is of %s", ErrBadManifest, s.Name)
			} else {
				l.Summary = &s
			}
		} else {
			l.SummaryErr = errors.New("no summary sidecar")
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Listed) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// ErrNoBackup means a store holds no backup.
var ErrNoBackup = errors.New("backup: no backup in the store")

// Newest returns the name of st's newest backup; ErrNoBackup when none.
func Newest(ctx context.Context, st Store) (string, error) {
	ls, err := List(ctx, st)
	if err != nil {
		return "", err
	}
	if len(ls) == 0 {
		return "", fmt.Errorf("%w %s", ErrNoBackup, st)
	}
	return ls[0].Name, nil
}

// DrillResult is a restore drill's outcome (app.DrillBackup), what the
// schedule records.
type DrillResult struct {
	Name          string // the backup drilled ("" when none was found)
	Started       time.Time
	Finished      time.Time
	RecoveryTime  time.Duration // restore and verification
	RecoveryPoint time.Duration // the backup's age when the drill started
	Counts        Counts        // from the backup's manifest
	// Created and Checkpoint (the audit log's size) are the manifest's,
	// authenticated by its seal (zero when the restore failed).
	Created    time.Time
	Checkpoint int64
	Err        error // nil: restored and verified
}
