package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/storage"
)

// maxKeyFileBytes bounds the key file read for an escrow (keys caps it
// at 1 MiB too).
const maxKeyFileBytes = 1 << 20

// EscrowKeyFile writes an escrow of the instance's key file (every KEK
// key id in it) to w, encrypted to recipients, and records it in the
// audit log as a key operation (key-escrow) before returning. It refuses
// a KMS KEK (nothing to escrow: the KMS keeps the key). It returns the
// key ids escrowed.
func (a *App) EscrowKeyFile(ctx context.Context, w io.Writer, recipients backup.Recipients, agent audit.Agent) ([]uint32, error) {
	if a.Config.Keys.KeyFile == "" {
		return nil, errors.New("the KEK is in a KMS (keys.kms_uri): escrow it with the KMS's own backup")
	}
	b, err := readBounded(a.Config.Keys.KeyFile, maxKeyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the key file: %w", err)
	}
	ids := a.Keys.KEK().KeyIDs()
	var buf bytes.Buffer
	if err := backup.WriteEscrow(&buf, b, ids, time.Now(), recipients); err != nil {
		return nil, err
	}
	idText := make([]string, len(ids))
	for i, id := range ids {
		idText[i] = strconv.FormatUint(uint64(id), 10)
	}
	err = a.Store.Update(ctx, func(tx storage.Tx) error {
		rec, err := a.Log.Seal(audit.Event{Time: time.Now().UTC(), Action: audit.ActionKeyEscrow, Outcome: audit.OutcomeSuccess,
			Agent: agent, Entities: []string{"key/kek-escrow"},
			Policies: []string{"kek_ids=" + strings.Join(idText, ","), "recipients=" + strconv.Itoa(len(recipients))}})
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("auditing the escrow: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("writing the escrow: %w", err)
	}
	return ids, nil
}

// RecoverKeyFile rebuilds a key file at out (created, mode 0600, never
// overwriting) from escrow files decrypted with identities: the first
// escrow an identity opens. It checks that the file opens as a KEK with
// the key ids the escrow lists, and returns them.
func RecoverKeyFile(ctx context.Context, escrows []string, ids backup.Identities, out string) ([]uint32, error) {
	var esc backup.Escrow
	var errs []error
	found := false
	for _, p := range escrows {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		e, err := backup.ReadEscrow(f, ids)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		esc, found = e, true
		break
	}
	if !found {
		return nil, errors.Join(errs...)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writing the key file: %w", err)
	}
	_, werr := f.Write(esc.KeyFile)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(out)
		return nil, fmt.Errorf("writing the key file: %w", err)
	}
	got, err := KeyFileIDs(ctx, out)
	if err != nil {
		os.Remove(out)
		return nil, fmt.Errorf("the escrowed key file does not open: %w", err)
	}
	if !slices.Equal(got, esc.KEKIDs) {
		os.Remove(out)
		return nil, fmt.Errorf("the escrowed key file holds key ids %v, the escrow says %v", got, esc.KEKIDs)
	}
	return got, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
