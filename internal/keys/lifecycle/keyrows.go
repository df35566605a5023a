package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Key records that open under no key of the key file (planted by a
// database writer, copied from another owner, or damaged): a KEK epoch
// skips them with an integrity alarm instead of stalling, so erasures
// still become final; "phivault verify" names them.

// skip checks rec, a live key record the job could not re-wrap, check or
// leave in place: if it opens under no key of kek (a planted row, a copy
// of another owner's wrapped key, damage) it is tampered; the job names
// it (integrity alarm) and skips it, and skip reports true. A record
// that opens under any key of the file, retired ones included, is never
// skipped: the job then fails as before and nothing is destroyed.
func (j *epochJob) skip(ctx context.Context, kek *keys.KEK, rec storage.KeyRecord) bool {
	if rec.Shredded || !errors.Is(kek.Opens(rec), keys.ErrDecrypt) {
		return false
	}
	if j.skipped == nil {
		j.skipped = map[ident.Owner]uint32{}
	}
	if _, ok := j.skipped[rec.Owner]; !ok {
		switch n := len(j.skipped); {
		case n < maxKeyRowAlarms:
			j.m.keyRowAlarm(ctx, rec)
		case n == maxKeyRowAlarms:
			// A flood of planted rows: the first ones are named, the
			// rest only counted (verify lists them).
			j.m.logger.Error("integrity alarm: more key records open under no key of the key file; the KEK epoch skips them: run phivault verify (docs/operations.md)",
				slog.Int("named", maxKeyRowAlarms))
		}
	}
	j.skipped[rec.Owner] = rec.KEKID
	j.rep.Tampered = len(j.skipped)
	return true
}

// keyRowAlarm raises the integrity alarm of a live key record that opens
// under no key of the key file: an error log line every time, and once
// per record an audit event and a high-priority alert in the security
// administrators' console (docs/operations.md).
func (m *Manager) keyRowAlarm(ctx context.Context, rec storage.KeyRecord) {
	owner := ident.Loggable(string(rec.Owner))
	m.logger.Error("integrity alarm: a key record opens under no key of the key file (planted, copied from another owner, or damaged); the KEK epoch skips it: run phivault verify (docs/operations.md)",
		slog.String("owner", owner), slog.Uint64("kek", uint64(rec.KEKID)))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), alarmTimeout)
	defer cancel()
	now := time.Now()
	ref := "key/" + owner
	ev, err := m.log.Seal(audit.Event{Time: now, Action: audit.ActionKeyRowTampered, Outcome: audit.OutcomeError,
		Agent: audit.Agent{User: "phivault", Client: m.holder}, Entities: []string{ref}})
	if err == nil {
		err = m.alerts.RaiseIntegrityAlert(ctx, "keyrow:"+keys.RecordFingerprint(rec)+":"+owner, alertKeyRowTampered, ref, now, ev)
	}
	if err != nil {
		m.logger.Error("integrity alarm could not be recorded", slog.String("owner", owner), slog.String("error", err.Error()))
	}
}

// maxKeyRowAlarms bounds the key records one epoch run names with an
// alarm (log line, audit event, alert): the database writes and log
// lines stay bounded whatever was planted.
const maxKeyRowAlarms = 1000

// alertKeyRowTampered is the alert kind of a key record that opens under
// no key of the key file.
const alertKeyRowTampered = "key-row-tampered"

// alarmTimeout bounds recording one integrity alarm (as app's alarms of
// refused auth rows).
const alarmTimeout = 10 * time.Second
