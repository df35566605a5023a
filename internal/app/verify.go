package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Problem is one stored version that failed verification, named by
// reference only (no content).
type Problem struct {
	Ref    string // Type/id/_history/version
	Reason string
}

// VerifyReport summarises a verification run.
type VerifyReport struct {
	Versions int64 // versions examined
	Opened   int64 // sealed versions that opened and matched their row
	Deleted  int64 // delete markers
	Erased   int64 // versions of crypto-shredded patients (unreadable by design)
	Problems []Problem
}

// maxProblems bounds the report; the count keeps going.
const maxProblems = 1000

// Verify opens every stored version with its owner's key, checks the
// AEAD (which binds type, id, version and owner) and that the plaintext
// names the same resource and version as its row. progress is called
// after each version.
func (a *App) Verify(ctx context.Context, progress func()) (VerifyReport, error) {
	var r VerifyReport
	recs := map[string]storage.KeyRecord{}
	var prev storage.VersionRef
	err := a.Store.ScanVersions(ctx, storage.VersionRef{}, func(v storage.Version) error {
		r.Versions++
		if progress != nil {
			progress()
		}
		ref := v.Type + "/" + v.ID + "/_history/" + strconv.FormatInt(v.Version, 10)
		problem := func(reason string) {
			if len(r.Problems) < maxProblems {
				r.Problems = append(r.Problems, Problem{Ref: ref, Reason: reason})
			}
		}
		// Versions are contiguous from 1: a gap means a deleted row.
		want := int64(1)
		if prev.Type == v.Type && prev.ID == v.ID {
			want = prev.Version + 1
		}
		if v.Version != want {
			problem(fmt.Sprintf("version %d is missing before it", want))
		}
		prev = storage.VersionRef{Type: v.Type, ID: v.ID, Version: v.Version}
		if v.Deleted {
			r.Deleted++
			return nil
		}
		rec, ok := recs[v.Owner]
		if !ok {
			var err error
			rec, err = a.Store.Key(ctx, v.Owner)
			if errors.Is(err, storage.ErrNotFound) {
				problem("its data key is missing")
				return nil
			}
			if err != nil {
				return err
			}
			recs[v.Owner] = rec
		}
		if rec.Shredded {
			r.Erased++
			return nil
		}
		dek, err := a.Keys.DEK(rec)
		if err != nil {
			problem("its data key cannot be unwrapped")
			return nil
		}
		pt, err := dek.Open(v.Ciphertext, keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: v.Owner})
		if err != nil {
			problem("the ciphertext fails authentication (altered, moved or copied from another row)")
			return nil
		}
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
			Meta         struct {
				VersionID string `json:"versionId"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(pt, &head); err != nil {
			problem("the plaintext is not JSON")
			return nil
		}
		if head.ResourceType != v.Type || head.ID != v.ID || head.Meta.VersionID != strconv.FormatInt(v.Version, 10) {
			problem("the plaintext names another resource or version")
			return nil
		}
		r.Opened++
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("scanning stored versions: %w", err)
	}
	return r, nil
}
