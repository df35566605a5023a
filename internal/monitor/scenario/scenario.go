package scenario

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/monitor"
)

// Scenario is a generated hospital with its injected misuse. The
// directory and care relationships are held in memory (they are the
// context Bundle); the event log is generated day by day as it is
// written. A Scenario is not safe for concurrent use.
type Scenario struct {
	o     Options
	w     *world
	incs  []incident
	truth []TruthRow
}

// New builds the scenario of o. It returns an error naming the field
// when o is out of range.
func New(o Options) (*Scenario, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &world{o: o}
	w.buildOrgs()
	w.buildPractitioners(newRand(o.Seed, streamDirectory))
	w.buildPatients(newRand(o.Seed, streamPatients))
	w.buildEncounters(newRand(o.Seed, streamEncounters))
	s := &Scenario{o: o, w: w}
	s.incs = w.planIncidents(newRand(o.Seed, streamIncidents))
	slices.SortStableFunc(s.incs, func(a, b incident) int { return a.at.Compare(b.at) })
	s.truth = w.truth(s.incs)
	return s, nil
}

// Options returns the options with their defaults filled in.
func (s *Scenario) Options() Options { return s.o }

// Truth returns the ground truth: one row per misuse pair, attack or
// user-level incident. The caller must not modify it.
func (s *Scenario) Truth() []TruthRow { return s.truth }

// WriteContext writes the context Bundle (FHIR R4 JSON, type
// collection).
func (s *Scenario) WriteContext(w io.Writer) error { return s.w.writeContext(w) }

// WriteTruth writes the ground truth as TSV: Practitioner/<id>,
// Patient/<id> (or empty), category, address (or empty); no header.
func (s *Scenario) WriteTruth(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, t := range s.truth {
		fmt.Fprintf(bw, "%s\t%s\t%s\t%s\n", t.User, t.Patient, t.Category, t.Address)
	}
	return bw.Flush()
}

// ParseTruth reads what WriteTruth wrote.
func ParseTruth(r io.Reader) ([]TruthRow, error) {
	var out []TruthRow
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		if sc.Text() == "" {
			continue
		}
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("reading truth line %d: want 4 tab-separated fields, got %d", n, len(f))
		}
		out = append(out, TruthRow{User: f[0], Patient: f[1], Category: monitor.Category(f[2]), Address: f[3]})
	}
	return out, sc.Err()
}

// WriteEvents writes the access log as FHIR AuditEvent NDJSON, in time
// order, and returns the number of events written. It holds one day of
// events at a time, so memory does not grow with the length of the log.
func (s *Scenario) WriteEvents(out io.Writer) (int64, error) {
	w := s.w
	bw := bufio.NewWriterSize(out, 1<<16)
	var (
		n     int64
		carry []touch
		spill []event // events of sessions that ran past midnight
		buf   []byte
		next  int // next incident
		err   error
	)
	for d := range s.o.Days {
		g := &dayGen{w: w, r: newRand(s.o.Seed, streamDays+uint64(d)), d: d, from: w.day(d), to: w.day(d + 1)}
		ts := append(carry, g.touches()...)
		carry = nil
		var today []touch
		for _, t := range ts {
			if t.t.Before(g.to) {
				today = append(today, t)
			} else {
				carry = append(carry, t)
			}
		}
		slices.SortStableFunc(today, func(a, b touch) int {
			if a.user != b.user {
				return a.user - b.user
			}
			return a.t.Compare(b.t)
		})
		evs := spill
		spill = nil
		for i := 0; i < len(today); {
			j := i
			for j < len(today) && today[j].user == today[i].user {
				j++
			}
			evs = append(evs, g.sessions(today[i:j])...)
			i = j
		}
		for next < len(s.incs) && s.incs[next].day <= d {
			evs = append(evs, g.play(s.incs[next])...)
			next++
		}
		slices.SortStableFunc(evs, func(a, b event) int { return a.t.Compare(b.t) })
		if d < s.o.Days-1 {
			cut, _ := slices.BinarySearchFunc(evs, g.to, func(e event, t time.Time) int { return e.t.Compare(t) })
			spill = append(spill, evs[cut:]...)
			evs = evs[:cut]
		}
		for i := range evs {
			if s.o.MaxEvents > 0 && n >= s.o.MaxEvents {
				break
			}
			n++
			buf, err = w.render(buf[:0], n, &evs[i])
			if err != nil {
				return n, err
			}
			if _, err := bw.Write(buf); err != nil {
				return n, err
			}
		}
		if s.o.MaxEvents > 0 && n >= s.o.MaxEvents {
			break
		}
	}
	return n, bw.Flush()
}
