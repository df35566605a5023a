package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/storage"
)

// Saved counts what [Service.Save] did.
type Saved struct {
	Created    int
	Updated    int
	Suppressed int      // of Created and Updated, how many a rule suppressed
	IDs        []string // the stored alerts, in the order given
}

// saveBatch bounds the alerts written in one transaction.
const saveBatch = 200

// MaxAccesses bounds the accesses kept in one alert's evidence after
// merging runs; the newest are kept.
const MaxAccesses = 2000

// Save upserts as by Key (see the package doc; alerts of as with the
// same source and key are merged first), applying the source's
// suppression rules, each with its audit event (audit.ActionMonitorAlert)
// in the transaction that stores it. An alert with an empty Key or
// Source is refused with ErrInvalid before anything is stored.
func (s *Service) Save(ctx context.Context, as []monitor.Alert) (Saved, error) {
	var out Saved
	as = collapse(as)
	rules := map[string][]activeRule{}
	authors := map[string]access{}
	for _, a := range as {
		if a.Key == "" || a.Source == "" {
			return Saved{}, fmt.Errorf("%w: an alert without key or source", ErrInvalid)
		}
		if _, ok := rules[a.Source]; !ok {
			rs, err := s.store.MonitorSuppressions(ctx, a.Source)
			if err != nil {
				return Saved{}, err
			}
			for _, r := range rs {
				x, err := s.accessOfAuthor(ctx, r.Author, authors)
				if err != nil {
					return Saved{}, err
				}
				rules[a.Source] = append(rules[a.Source], activeRule{MonitorSuppression: r, author: x})
			}
		}
	}
	for lo := 0; lo < len(as); lo += saveBatch {
		part := as[lo:min(lo+saveBatch, len(as))]
		var err error
		for try := 0; ; try++ {
			var got Saved
			got, err = s.saveBatch(ctx, part, rules)
			if !errors.Is(err, errRace) || try == 3 {
				if err == nil {
					out.Created += got.Created
					out.Updated += got.Updated
					out.Suppressed += got.Suppressed
					out.IDs = append(out.IDs, got.IDs...)
				}
				break
			}
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// collapse merges the alerts of as with the same source and key, in
// order (a later one over an earlier one, as a later run would).
func collapse(as []monitor.Alert) []monitor.Alert {
	type k struct{ source, key string }
	at := make(map[k]int, len(as))
	out := make([]monitor.Alert, 0, len(as))
	for _, a := range as {
		if i, ok := at[k{a.Source, a.Key}]; ok {
			out[i] = merge(out[i], a)
			continue
		}
		at[k{a.Source, a.Key}] = len(out)
		out = append(out, a)
	}
	return out
}

// errRace: another writer created or changed an alert of the batch
// between its read and its write; the batch is prepared again.
var errRace = errors.New("monitor alert changed concurrently")

// prepared is one alert ready to write.
type prepared struct {
	row     storage.MonitorAlert
	prev    *storage.MonitorAlert // as read before the transaction
	userMAC []byte
	ev      audit.Event
}

// activeRule is a stored suppression rule with what its author may triage.
type activeRule struct {
	storage.MonitorSuppression
	author access
}

func (s *Service) saveBatch(ctx context.Context, as []monitor.Alert, rules map[string][]activeRule) (Saved, error) {
	now := s.now().UTC()
	ps := make([]prepared, 0, len(as))
	for _, a := range as {
		p, err := s.prepare(ctx, a, now)
		if err != nil {
			return Saved{}, err
		}
		ps = append(ps, p)
	}
	var out Saved
	err := s.tx.Update(ctx, func(t storage.MonitorTx) error {
		out = Saved{}
		var recs []storage.AuditRecord
		for _, p := range ps {
			row := p.row
			cur, err := t.MonitorAlertByDedup(ctx, row.Dedup)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				if p.prev != nil {
					return errRace
				}
				out.Created++
			case err != nil:
				return err
			default:
				if p.prev == nil || cur.ID != p.prev.ID || !cur.Updated.Equal(p.prev.Updated) {
					return errRace
				}
				// The triage survives a new run.
				row.Status, row.Assignee, row.Suppressed = cur.Status, cur.Assignee, cur.Suppressed
				out.Updated++
			}
			if row.Suppressed == "" && row.Status == storage.AlertOpen {
				row.Suppressed = match(rules[row.Source], row, p.userMAC)
			}
			if row.Suppressed != "" {
				out.Suppressed++
			}
			if err := t.PutMonitorAlert(ctx, row); err != nil {
				return err
			}
			ev := p.ev
			if row.Suppressed != "" {
				ev.Policies = append(slices.Clip(ev.Policies), "suppressed="+row.Suppressed)
			}
			rec, err := s.log.Seal(ev)
			if err != nil {
				return fmt.Errorf("%w: %v", audit.ErrUnavailable, err)
			}
			recs = append(recs, rec)
			out.IDs = append(out.IDs, row.ID)
		}
		return t.AppendAudit(ctx, recs...)
	})
	return out, unrecorded(err)
}

// prepare reads a's stored alert (if any), merges, and seals.
func (s *Service) prepare(ctx context.Context, a monitor.Alert, now time.Time) (prepared, error) {
	dedup, err := s.macOf(macAlert, a.Source, a.Key)
	if err != nil {
		return prepared{}, err
	}
	p := prepared{row: storage.MonitorAlert{Dedup: dedup, Source: a.Source, Status: storage.AlertOpen, Created: now, Updated: now}}
	prev, err := s.store.MonitorAlertByDedup(ctx, dedup)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if p.row.ID, err = s.newID(); err != nil {
			return prepared{}, err
		}
	case err != nil:
		return prepared{}, err
	default:
		p.prev = &prev
		p.row.ID, p.row.Created = prev.ID, prev.Created
		old, err := s.openAlert(ctx, prev)
		if err == nil {
			a = merge(old, a)
		} // an unreadable old body is replaced by the new evidence
	}
	if a.User != "" {
		if p.userMAC, err = s.macOf(macUser, a.Source, a.User); err != nil {
			return prepared{}, err
		}
	}
	for _, ref := range a.Patients {
		m, err := s.macOf(macPatient, a.Source, ref)
		if err != nil {
			return prepared{}, err
		}
		p.row.Patients = append(p.row.Patients, m)
	}
	p.row.Category, p.row.Severity, p.row.Score = string(a.Category), string(a.Severity), a.Score
	p.row.First, p.row.Last = a.First.UTC(), a.Last.UTC()
	body, err := json.Marshal(a)
	if err != nil {
		return prepared{}, fmt.Errorf("encoding an alert: %w", err)
	}
	if p.row.Body, err = s.seal.Seal(ctx, kindAlert, p.row.ID, 1, body); err != nil {
		return prepared{}, fmt.Errorf("sealing an alert: %w", err)
	}
	p.ev = audit.Event{Time: now, Action: audit.ActionMonitorAlert, Outcome: audit.OutcomeSuccess, Agent: systemAgent,
		Entities: []string{"MonitorAlert/" + p.row.ID},
		Policies: []string{"category=" + string(a.Category), "severity=" + string(a.Severity),
			"score=" + strconv.FormatFloat(a.Score, 'f', 2, 64), "source=" + a.Source}}
	if a.Source == SourcePhivault {
		// Only phivault's own patients are named: an auditor's search of
		// the log by patient finds the alert. No patient sees it
		// (audit.Event.PatientView leaves monitoring events out).
		p.ev.Patients = slices.Clone(a.Patients)
	}
	return p, nil
}

// merge is the alert of a new run over the stored one: the new score,
// explanation and categories; the union of patients and accesses; the
// widest time span.
func merge(old, a monitor.Alert) monitor.Alert {
	for _, p := range old.Patients {
		if !slices.Contains(a.Patients, p) {
			a.Patients = append(a.Patients, p)
		}
	}
	for _, c := range old.Categories {
		if !slices.Contains(a.Categories, c) {
			a.Categories = append(a.Categories, c)
		}
	}
	if !old.First.IsZero() && (a.First.IsZero() || old.First.Before(a.First)) {
		a.First = old.First
	}
	if old.Last.After(a.Last) {
		a.Last = old.Last
	}
	type k struct {
		t   time.Time
		ref string
		p   string
	}
	seen := map[k]bool{}
	acc := make([]monitor.AccessRef, 0, len(old.Evidence.Accesses)+len(a.Evidence.Accesses))
	for _, x := range slices.Concat(old.Evidence.Accesses, a.Evidence.Accesses) {
		key := k{x.Time.UTC(), x.Ref, x.Patient}
		if !seen[key] {
			seen[key] = true
			acc = append(acc, x)
		}
	}
	slices.SortStableFunc(acc, func(x, y monitor.AccessRef) int { return x.Time.Compare(y.Time) })
	if len(acc) > MaxAccesses {
		acc = acc[len(acc)-MaxAccesses:]
	}
	a.Evidence.Accesses = acc
	return a
}

// match returns the id of the first rule that matches row, or "". A
// rule never suppresses an alert its author may not triage now (a
// security administrator's rule, even one made before rules kept the
// category, never suppresses a privacy alert; an unknown author's
// rule nothing).
func match(rules []activeRule, row storage.MonitorAlert, user []byte) string {
	for _, r := range rules {
		if !r.author.may(row.Category) {
			continue
		}
		if r.Category != "" && r.Category != row.Category {
			continue
		}
		if r.User != nil && !bytes.Equal(r.User, user) {
			continue
		}
		if r.Patient != nil && !slices.ContainsFunc(row.Patients, func(p []byte) bool { return bytes.Equal(p, r.Patient) }) {
			continue
		}
		return r.ID
	}
	return ""
}

// openAlert opens a stored alert's body.
func (s *Service) openAlert(ctx context.Context, row storage.MonitorAlert) (monitor.Alert, error) {
	var a monitor.Alert
	body, err := s.seal.Open(ctx, kindAlert, row.ID, 1, row.Body)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("decoding alert %s: %w", row.ID, err)
	}
	return a, nil
}

// Cursor returns the position of a continuous source's cursor (the own
// audit log: the next leaf to read), 0 if never set.
func (s *Service) Cursor(ctx context.Context, name string) (int64, error) {
	return s.store.MonitorCursor(ctx, name)
}

// SetCursor moves cursor name to pos. A source calls it after Save of
// the alerts of the events before pos: after a crash between the two,
// the events are read again and Save upserts the same alerts by key
// (at least once, never lost).
func (s *Service) SetCursor(ctx context.Context, name string, pos int64) error {
	if name == "" || pos < 0 {
		return fmt.Errorf("%w: a cursor needs a name and a position of 0 or more", ErrInvalid)
	}
	now := s.now().UTC()
	return s.tx.Update(ctx, func(t storage.MonitorTx) error { return t.SetMonitorCursor(ctx, name, pos, now) })
}
