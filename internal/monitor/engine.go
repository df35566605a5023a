package monitor

import (
	"slices"
	"strings"
	"time"
)

// Defaults of [Options].
const (
	// DefaultMaxEvidence is how many accesses an alert keeps as evidence
	// (and how many found or missing relationships): enough for a privacy
	// officer to see the pattern, bounded so that a bulk export of a
	// million records does not make a million-line alert.
	DefaultMaxEvidence = 20
	// DefaultMaxPatients caps the patients a behaviour alert lists.
	DefaultMaxPatients = 1000
	// DefaultRetention is how long the engine remembers a pair, a
	// session or a reported alert after its last event. A later event on
	// the same pair makes an alert with the same Key, which the store
	// merges into the earlier one.
	DefaultRetention = 48 * time.Hour
)

// Options configure an [Engine].
type Options struct {
	// Source names the events' source in alerts ("phivault", or the
	// name given to an ingest).
	Source string
	// Location is the time zone of rostered hours and of the hour and
	// day windows. Nil means the zone of each event's timestamp: the
	// offset the source wrote ("+01:00"), UTC for "Z"; an ingest of a
	// log written in UTC from a hospital elsewhere sets it.
	Location *time.Location
	// Weights of the score (nil: [DefaultWeights]).
	Weights *Weights
	// MaxEvidence caps each alert's accesses (0: DefaultMaxEvidence).
	MaxEvidence int
	// MaxPatients caps the patients of a behaviour alert (0: DefaultMaxPatients).
	MaxPatients int
	// Retention bounds how long state is kept after its last event (0:
	// DefaultRetention).
	Retention time.Duration
}

// Engine consumes events in time order (roughly: late events are
// counted in the window open when they arrive) and yields alerts. It
// holds bounded state: per user hour and day aggregates, per pair and
// per address summaries that expire after [Options.Retention], capped
// evidence. Not safe for concurrent use.
type Engine struct {
	dir *Directory
	opt Options
	w   Weights

	now       time.Time // the latest event time
	hourStart time.Time // the open hour window
	dayStart  time.Time // the open day window
	lastSweep time.Time

	users  map[string]*userState
	pairs  map[pairKey]*pairState
	groups map[string]*group
	att    attackState

	alerts  map[string]*alertState
	work    workforce
	patDemo map[string]*demographics
	scratch []float64
}

// NewEngine returns an engine explaining accesses against dir. The
// directory may grow between calls to Add (the own-log source adds the
// facts of patients as it meets them); it must not change during one.
func NewEngine(dir *Directory, o Options) *Engine {
	if o.MaxEvidence <= 0 {
		o.MaxEvidence = DefaultMaxEvidence
	}
	if o.MaxPatients <= 0 {
		o.MaxPatients = DefaultMaxPatients
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	w := DefaultWeights()
	if o.Weights != nil {
		w = *o.Weights
	}
	if dir == nil {
		dir = NewDirectory()
	}
	return &Engine{
		dir:     dir,
		opt:     o,
		w:       w,
		users:   map[string]*userState{},
		pairs:   map[pairKey]*pairState{},
		groups:  map[string]*group{},
		att:     newAttackState(),
		alerts:  map[string]*alertState{},
		patDemo: map[string]*demographics{},
	}
}

// Add consumes one event.
func (e *Engine) Add(ev Event) {
	if ev.Time.IsZero() {
		return
	}
	e.advance(ev.Time)
	user := e.resolveUser(ev.User)
	e.attacks(user, &ev)
	if ev.Kind != KindAccess || ev.Patient == "" || user == "" {
		return
	}
	if ev.Outcome != "" && ev.Outcome != OutcomeSuccess {
		return // a refused or missing read showed nothing; the attack detectors count it
	}
	e.access(user, &ev)
}

// resolveUser maps an account or a PractitionerRole to the Practitioner
// it is, when the directory knows it.
func (e *Engine) resolveUser(u string) string {
	if p, ok := e.dir.Accounts[u]; ok && p != "" {
		return p
	}
	if p, ok := e.dir.RolePractitioner[u]; ok && p != "" {
		return p
	}
	return u
}

// advance moves the clock, closing the hour and day windows that end
// before t.
func (e *Engine) advance(t time.Time) {
	if t.After(e.now) {
		e.now = t
	}
	if e.hourStart.IsZero() {
		e.hourStart = e.hourOf(t)
		e.dayStart = e.dayOf(t)
		e.lastSweep = t
		return
	}
	for !t.Before(e.hourStart.Add(time.Hour)) {
		e.closeHour()
		next := e.hourStart.Add(time.Hour)
		if jump := e.hourOf(t); jump.After(next) {
			next = jump // skip empty hours
		}
		e.hourStart = next
		if d := e.dayOf(e.hourStart); !d.Equal(e.dayStart) {
			e.closeDay()
			e.dayStart = d
		}
	}
	if t.Sub(e.lastSweep) >= time.Hour {
		e.sweep()
		e.lastSweep = t
	}
}

func (e *Engine) hourOf(t time.Time) time.Time {
	lt := e.local(t)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), 0, 0, 0, lt.Location())
}

// local is t in the time zone of rostered hours: Options.Location, or
// the offset the source wrote in the event's timestamp.
func (e *Engine) local(t time.Time) time.Time {
	if e.opt.Location != nil {
		return t.In(e.opt.Location)
	}
	return t
}

func (e *Engine) dayOf(t time.Time) time.Time {
	lt := e.local(t)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, lt.Location())
}

// sweep forgets state older than the retention.
func (e *Engine) sweep() {
	old := e.now.Add(-e.opt.Retention)
	idle := e.now.Add(-time.Hour)
	for k, p := range e.pairs {
		// A pair with nothing to report carries nothing worth keeping
		// past an hour: its next access is explained afresh.
		if p.last.Before(old) || (p.last.Before(idle) && p.unexplained == 0 && len(p.static) == 0 && !p.vip) {
			delete(e.pairs, k)
		}
	}
	for k, a := range e.alerts {
		if !a.dirty && a.alert.Last.Before(old) {
			delete(e.alerts, k)
		}
	}
	for k, u := range e.users {
		if u.lastSeen.Before(old) && u.day.n == 0 {
			delete(e.users, k)
		}
	}
	e.att.sweep(old)
}

// Alerts returns the alerts created or changed since the last call,
// worst first. final closes every open window (the end of an ingested
// log); a continuous source passes false and calls it periodically.
func (e *Engine) Alerts(final bool) []Alert {
	if final && !e.hourStart.IsZero() {
		e.closeHour()
		e.closeDay()
		e.hourStart = e.hourStart.Add(time.Hour)
		e.dayStart = e.dayOf(e.hourStart)
	}
	var out []Alert
	for _, a := range e.alerts {
		if !a.dirty {
			continue
		}
		a.dirty = false
		if a.alert.Score < ReportScore {
			continue
		}
		out = append(out, a.alert.clone())
	}
	slices.SortFunc(out, func(a, b Alert) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// alertState is an alert and whether it changed since it was returned.
type alertState struct {
	alert Alert
	dirty bool
}

// upsert stores a finding under its key; a changed alert is returned by
// the next call of Alerts. An alert never goes down once reported: the
// score is the worst seen.
func (e *Engine) upsert(a Alert) {
	a.Source = e.opt.Source
	a.Score = round(a.Score)
	a.Severity = severityOf(a.Score)
	s, ok := e.alerts[a.Key]
	if !ok {
		if a.Score < ReportScore {
			return
		}
		e.alerts[a.Key] = &alertState{alert: a, dirty: true}
		return
	}
	if a.Score < s.alert.Score {
		return // a weaker view of the same finding (a later, quieter window)
	}
	if !a.First.IsZero() && !s.alert.First.IsZero() && s.alert.First.Before(a.First) {
		a.First = s.alert.First
	}
	if !s.alert.equal(&a) {
		s.alert = a
		s.dirty = true
	}
}

func (a *Alert) equal(b *Alert) bool {
	return a.Score == b.Score && a.Category == b.Category && a.Explanation == b.Explanation &&
		a.Last.Equal(b.Last) && len(a.Patients) == len(b.Patients) &&
		len(a.Evidence.Accesses) == len(b.Evidence.Accesses) && slices.Equal(a.Categories, b.Categories)
}

func (a *Alert) clone() Alert {
	c := *a
	c.Patients = slices.Clone(a.Patients)
	c.Categories = slices.Clone(a.Categories)
	c.Evidence.Accesses = slices.Clone(a.Evidence.Accesses)
	c.Evidence.Found = slices.Clone(a.Evidence.Found)
	c.Evidence.Missing = slices.Clone(a.Evidence.Missing)
	c.Evidence.Signals = slices.Clone(a.Evidence.Signals)
	return c
}

// key builds a stable alert key from its parts.
func (e *Engine) key(parts ...string) string {
	return e.opt.Source + "|" + strings.Join(parts, "|")
}

func accessRef(ev *Event) AccessRef {
	return AccessRef{Time: ev.Time, Patient: ev.Patient, Action: ev.Action, Outcome: ev.Outcome, Address: ev.Address, Ref: ev.Ref}
}

// appendCapped appends while under n.
func appendCapped[T any](s []T, n int, v T) []T {
	if len(s) >= n {
		return s
	}
	return append(s, v)
}
