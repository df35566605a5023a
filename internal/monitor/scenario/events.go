package scenario

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/monitor"
)

type evKind uint8

const (
	evAccess evKind = iota // a RESTful interaction on a patient's data
	evExport               // a bulk export of many patients
	evLogin                // password step
	evMFA                  // second factor
	evLogout
	evToken // a request presenting a refused token
)

type outcome uint8

const (
	outOK outcome = iota
	outDenied
	outNotFound
	outFailure
)

// event is one line of the log before rendering.
type event struct {
	t           time.Time
	kind        evKind
	interaction string // restful-interaction code for accesses
	out         outcome
	user        int    // practitioner, or -1
	login       string // account name tried, for authentication events
	patients    []string
	addr        string
	session     string
}

// touch is one legitimate opening of a patient's chart by a user.
type touch struct {
	t    time.Time
	user int
	pat  int
}

// dayGen generates the events of one day. Touches can fall after the
// day (an emergency visit past midnight, charting after a shift): the
// writer carries them to the day they fall on.
type dayGen struct {
	w    *world
	r    *rand.Rand
	d    int
	from time.Time
	to   time.Time
}

// touches generates the legitimate chart openings explained by the
// data: encounter participants and care team members during the stay
// (a covering nurse only during her covered shift), nurses of the unit on
// shift (some charting up to 40 minutes after their shift), a doctor
// reviewing a clinic patient a day or two later, the departments that
// fulfil orders, the consultant asked for, and billing after discharge.
func (g *dayGen) touches() []touch {
	w, r := g.w, g.r
	var out []touch
	at := func(u int, t time.Time, pat int) {
		// A workforce member treated in their own unit is cared for by
		// colleagues: they do not open their own chart legitimately.
		if !t.Before(g.from) && w.pats[pat].prac != u {
			out = append(out, touch{t: t, user: u, pat: pat})
		}
	}
	// within draws a time in [a, b) ∩ the day, or false.
	within := func(a, b time.Time) (time.Time, bool) {
		a, b = later(a, g.from), earlier(b, g.to)
		if !a.Before(b) {
			return time.Time{}, false
		}
		return a.Add(time.Duration(r.Int64N(int64(b.Sub(a))))), true
	}
	for _, ei := range w.encByDay[g.d] {
		e := &w.encs[ei]
		for _, p := range append(append([]participant(nil), e.parts...), e.team...) {
			a, b := e.start, e.end
			if !p.start.IsZero() {
				a, b = p.start, p.end
			}
			if p.typ == "ADM" {
				at(p.prac, e.start.Add(-time.Duration(r.IntN(10))*time.Minute), e.patient)
				continue
			}
			n := 1 + r.IntN(3)
			if e.class == "IMP" && p.start.IsZero() && w.pracs[p.prac].role == roleDoctor {
				// rounds: the attending sees the patient during his shift
				for _, sw := range w.shiftWindows(p.prac, g.d) {
					if t, ok := within(later(a, sw[0]), earlier(b, sw[1])); ok {
						at(p.prac, t, e.patient)
					}
				}
				continue
			}
			if e.class == "IMP" && p.start.IsZero() { // care team nurses: on their shifts
				for _, sw := range w.shiftWindows(p.prac, g.d) {
					if t, ok := within(later(a, sw[0]), earlier(b, sw[1])); ok {
						at(p.prac, t, e.patient)
					}
				}
				continue
			}
			for range n {
				if t, ok := within(a, b.Add(20*time.Minute)); ok {
					at(p.prac, t, e.patient)
				}
			}
		}
		if e.class == "AMB" && r.IntN(25) == 0 { // review of results a day or two later
			doc := e.parts[0].prac
			if ws := w.shiftWindows(doc, g.d+1+r.IntN(2)); len(ws) > 0 {
				out = append(out, touch{t: ws[0][0].Add(time.Duration(r.IntN(300)) * time.Minute), user: doc, pat: e.patient})
			}
		}
		if e.class == "AMB" {
			continue
		}
		// Nurses of the unit on shift, in each eight-hour window.
		for h := 7; h < 31; h += 8 {
			a := g.from.Add(time.Duration(h) * time.Hour)
			b := a.Add(8 * time.Hour)
			if !a.Before(e.end) || !b.After(e.start) {
				continue
			}
			on := w.onShiftAmong(e.org, a.Add(time.Hour))
			if len(on) == 0 {
				continue
			}
			for range 1 + r.IntN(2) {
				n := pick(r, on)
				if t, ok := within(later(a, e.start), earlier(b, e.end)); ok {
					at(n, t, e.patient)
				}
				if r.IntN(12) == 0 && b.Before(e.end) { // late charting
					at(n, b.Add(time.Duration(5+r.IntN(35))*time.Minute), e.patient)
				}
			}
		}
	}
	for _, si := range w.srByDay[g.d] {
		s := w.srs[si]
		e := w.encs[s.enc]
		t := s.authored.Add(time.Duration(10+r.IntN(150)) * time.Minute)
		// the department's staff on shift (for a consult, one of its doctors)
		at(w.staff(r, s.perfOrg, t), t, e.patient)
	}
	for _, ei := range w.billDay[g.d] {
		e := w.encs[ei]
		at(w.staff(r, w.orgByID("billing"), e.billAt), e.billAt, e.patient)
	}
	// Legitimate but unexplained: near a chart the user opened, another
	// patient nothing in the data ties to them.
	for _, tc := range out[:len(out):len(out)] {
		if r.IntN(1000) < w.o.Unexplained {
			at(tc.user, tc.t.Add(time.Duration(1+r.IntN(20))*time.Minute), r.IntN(len(w.pats)))
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (g *dayGen) session() string { return fmt.Sprintf("%016x", g.r.Uint64()) }

// sessions turns one user's touches of the day into sessions: a login
// (now and then after a mistyped password), the second factor, a few
// interactions per chart, a logout; a new session after 90 minutes idle.
func (g *dayGen) sessions(ts []touch) []event {
	w, r := g.w, g.r
	var out []event
	slices.SortFunc(ts, func(a, b touch) int { return a.t.Compare(b.t) })
	for i := 0; i < len(ts); {
		j := i + 1
		for j < len(ts) && ts[j].t.Sub(ts[j-1].t) < 90*time.Minute {
			j++
		}
		u := ts[i].user
		pr := w.pracs[u]
		sid, addr := g.session(), pick(r, pr.stations)
		t0 := ts[i].t.Add(-time.Duration(30+r.IntN(240)) * time.Second)
		if t0.Before(g.from) {
			t0 = g.from
		}
		if r.IntN(30) == 0 { // a typo
			out = append(out, event{t: t0.Add(-20 * time.Second), kind: evLogin, out: outFailure, user: u, login: pr.login, addr: addr})
		}
		out = append(out,
			event{t: t0, kind: evLogin, user: u, login: pr.login, addr: addr, session: sid},
			event{t: t0.Add(8 * time.Second), kind: evMFA, user: u, login: pr.login, addr: addr, session: sid, out: mfaOutcome(r)})
		var last time.Time
		for _, tc := range ts[i:j] {
			t := tc.t
			pat := []string{ident.PatientPrefix + w.pats[tc.pat].id}
			for k := range 1 + r.IntN(4) {
				ev := event{t: t, kind: evAccess, interaction: interactions[k], user: u, patients: pat, addr: addr, session: sid}
				switch x := r.IntN(1000); {
				case x < 3:
					ev.out, ev.interaction = outDenied, "update"
				case x < 4:
					ev.out, ev.patients = outNotFound, []string{fmt.Sprintf("Patient/pt%d", len(w.pats)+1+r.IntN(len(w.pats)))}
				}
				out = append(out, ev)
				t = t.Add(time.Duration(2+r.IntN(40)) * time.Second)
			}
			last = t
		}
		if r.IntN(10) < 7 {
			out = append(out, event{t: last.Add(time.Duration(1+r.IntN(10)) * time.Minute), kind: evLogout, user: u, addr: addr, session: sid})
		}
		i = j
	}
	return out
}

var interactions = []string{"read", "search-type", "read", "vread"}

func mfaOutcome(r *rand.Rand) outcome {
	if r.IntN(100) == 0 {
		return outFailure
	}
	return outOK
}

// play renders an incident as events.
func (g *dayGen) play(in incident) []event {
	w, r := g.w, g.r
	var out []event
	u := in.user
	var login, addr, sid string
	if u >= 0 {
		login, addr, sid = w.pracs[u].login, pick(r, w.pracs[u].stations), g.session()
	}
	if in.addr != "" && in.cat != monitor.CatSession {
		addr = in.addr
	}
	t := in.at
	step := func(d time.Duration) time.Time { t = t.Add(d); return t }
	signIn := func() {
		out = append(out,
			event{t: step(0), kind: evLogin, user: u, login: login, addr: addr, session: sid},
			event{t: step(8 * time.Second), kind: evMFA, user: u, login: login, addr: addr, session: sid})
	}
	reads := func(ps []int, gap time.Duration) {
		for _, p := range ps {
			ref := []string{ident.PatientPrefix + w.pats[p].id}
			for k := range 1 + r.IntN(3) {
				out = append(out, event{t: step(gap/2 + time.Duration(r.Int64N(int64(gap)))), kind: evAccess,
					interaction: interactions[k], user: u, patients: ref, addr: addr, session: sid})
			}
		}
	}
	switch in.cat {
	case monitor.CatVolume: // spread over the whole shift
		signIn()
		reads(in.patients, 8*time.Hour/time.Duration(3*len(in.patients)+1))
	case monitor.CatBrowsing: // many charts in half an hour
		signIn()
		reads(in.patients, 30*time.Minute/time.Duration(2*len(in.patients)+1))
	case monitor.CatBulk:
		signIn()
		var refs []string
		for _, p := range in.patients {
			refs = append(refs, ident.PatientPrefix+w.pats[p].id)
		}
		out = append(out, event{t: step(2 * time.Minute), kind: evExport, user: u, patients: refs, addr: addr, session: sid})
	case monitor.CatCredential:
		for _, l := range in.logins {
			ev := event{t: step(time.Duration(in.count)*time.Second + time.Duration(r.IntN(1000))*time.Millisecond),
				kind: evLogin, out: outFailure, user: -1, login: l, addr: in.addr}
			if k := w.loginIndex(l); k >= 0 {
				ev.user = k
			}
			out = append(out, ev)
		}
	case monitor.CatMFA:
		out = append(out, event{t: step(0), kind: evLogin, user: u, login: login, addr: in.addr, session: sid})
		for range in.count {
			out = append(out, event{t: step(time.Duration(20+r.IntN(60)) * time.Second), kind: evMFA, out: outFailure,
				user: u, login: login, addr: in.addr, session: sid})
		}
	case monitor.CatToken:
		for range in.count {
			out = append(out, event{t: step(time.Duration(5+r.IntN(30)) * time.Second), kind: evToken, out: outFailure,
				interaction: "search-type", user: u, addr: in.addr, session: g.session()})
		}
	case monitor.CatEnumeration:
		signIn()
		for _, id := range in.ghosts {
			out = append(out, event{t: step(time.Duration(1+r.IntN(5)) * time.Second), kind: evAccess, interaction: "read",
				out: outNotFound, user: u, patients: []string{ident.PatientPrefix + id}, addr: addr, session: sid})
		}
	case monitor.CatDenied:
		signIn()
		for range in.count {
			p := r.IntN(len(w.pats))
			out = append(out, event{t: step(time.Duration(3+r.IntN(20)) * time.Second), kind: evAccess,
				interaction: pick(r, []string{"read", "update", "delete"}), out: outDenied, user: u,
				patients: []string{ident.PatientPrefix + w.pats[p].id}, addr: addr, session: sid})
		}
	case monitor.CatSession:
		// The user's own session, then the same session replayed from a
		// second address (a stolen cookie or token): searches that name
		// no patient, so the pair detectors have nothing to say.
		signIn()
		out = append(out, event{t: step(time.Minute), kind: evAccess, interaction: "search-type", user: u, addr: addr, session: sid})
		for range in.count {
			out = append(out, event{t: step(time.Duration(10+r.IntN(60)) * time.Second), kind: evAccess, interaction: "search-type",
				user: u, addr: in.addr, session: sid})
		}
	default: // a pair (family, neighbour, coworker, self, VIP, off hours)
		signIn()
		reads(in.patients, 3*time.Minute)
	}
	if u >= 0 && in.cat != monitor.CatCredential && in.cat != monitor.CatToken && in.cat != monitor.CatMFA {
		out = append(out, event{t: step(2 * time.Minute), kind: evLogout, user: u, addr: addr, session: sid})
	}
	return out
}

func (w *world) loginIndex(l string) int {
	for i := range w.pracs {
		if w.pracs[i].login == l {
			return i
		}
	}
	return -1
}
