package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ErrChecksum means the archive's SHA-256 is not the one its NAME.sha256
// sidecar records: damaged or tampered in storage.
var ErrChecksum = errors.New("backup: checksum mismatch")

// readOptions configures readBackup.
type readOptions struct {
	ids    Identities
	limits Limits
	p      Progress
}

// readBackup reads backup name from st, hashing the ciphertext. With
// identities it also decrypts it and reads the archive (readArchive,
// calling fn per entry) and returns what it read; the caller checks the
// seal (checkSeal). The ciphertext hash is compared with the
// sidecar's at the end; a missing sidecar is an error.
func readBackup(ctx context.Context, st Store, name string, o readOptions, fn entryFunc) (size int64, sum string, a *archived, err error) {
	ids, p := o.ids, o.p
	if _, ok := IsBackupName(name); !ok {
		return 0, "", nil, fmt.Errorf("backup: %q is not the name of a backup (phivault-<time>.age)", name)
	}
	want, err := readSum(ctx, st, name)
	if err != nil {
		return 0, "", nil, err
	}
	rc, err := st.Get(ctx, name)
	if err != nil {
		return 0, "", nil, fmt.Errorf("backup: opening %s: %w", name, err)
	}
	defer rc.Close()
	total := int64(-1)
	if objs, err := st.List(ctx); err == nil {
		for _, o := range objs {
			if o.Name == name {
				total = o.Size
			}
		}
	}
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(p.reader(ctx, "read", total, rc), h)}
	if ids != nil {
		pt, err := decrypt(cr, ids)
		if err != nil {
			return 0, "", nil, err
		}
		aa, err := readArchive(pt, fn, o.limits.budget(total))
		if err == nil {
			_, err = io.Copy(io.Discard, pt) // age checks its last chunk at EOF
		}
		if err != nil {
			if _, derr := io.Copy(io.Discard, cr); derr == nil && hex.EncodeToString(h.Sum(nil)) != want {
				return 0, "", nil, fmt.Errorf("%w: %s has SHA-256 %s, %s%s says %s: the archive was damaged or tampered with (%v)",
					ErrChecksum, name, hex.EncodeToString(h.Sum(nil)), name, SumSuffix, want, err)
			}
			var sink *sinkError
			switch {
			case errors.As(err, &sink) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge):
				return 0, "", nil, sink.err // the target's error, not the archive's
			case !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongIdentity) && !errors.Is(err, ErrTooLarge) &&
				!errors.Is(err, ErrUnauthenticated) && ctx.Err() == nil:
				err = fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			return 0, "", nil, fmt.Errorf("backup: reading %s: %w", name, err)
		}
		a = &aa
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return 0, "", nil, fmt.Errorf("backup: reading %s: %w", name, err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if sum != want {
		return 0, "", nil, fmt.Errorf("%w: %s has SHA-256 %s, %s%s says %s: the archive or its checksum was damaged or tampered with",
			ErrChecksum, name, sum, name, SumSuffix, want)
	}
	return cr.n, sum, a, nil
}

// readSum reads NAME.sha256.
func readSum(ctx context.Context, st Store, name string) (string, error) {
	b, err := readObject(ctx, st, name+SumSuffix, 1024)
	if errors.Is(err, ErrNotExist) {
		return "", fmt.Errorf("backup: %s has no checksum (%s%s is missing)", name, name, SumSuffix)
	}
	if err != nil {
		return "", err
	}
	return ParseSum(b)
}

// ReadSummary reads NAME.json; ErrNotExist when there is none.
func ReadSummary(ctx context.Context, st Store, name string) (Summary, error) {
	b, err := readObject(ctx, st, name+SummarySuffix, maxManifestBytes)
	if err != nil {
		return Summary{}, err
	}
	return ParseSummary(b)
}

func readObject(ctx context.Context, st Store, name string, limit int64) ([]byte, error) {
	rc, err := st.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("backup: reading %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("backup: %s is larger than %d bytes", name, limit)
	}
	return b, nil
}
