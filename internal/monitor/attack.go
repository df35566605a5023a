package monitor

import (
	"fmt"
	"math"
	"time"
)

// Attack findings come from authentication and refused requests, per
// source address or per account, in hour windows (a day for password
// spraying, which is low and slow):
//
//   - credential stuffing: failed sign-ins on many accounts from one
//     address in an hour, accounts that do not exist included;
//   - password spraying: few failures on each of many accounts from one
//     address over a day;
//   - second-factor failures of one account;
//   - refused tokens from one address;
//   - enumeration: reads of ids that do not exist, by one user or address;
//   - refused requests of one user or address;
//   - one session or token used from two addresses.
//
// Each count is scored with a [CountRule]; its Base is the count at
// which the finding becomes more likely an attack than not.

// maxAttackKeys caps the distinct accounts or ids kept per window.
const maxAttackKeys = 4096

type addrHour struct {
	start    time.Time
	accounts map[string]int // failed sign-ins per account
	unknown  int            // of which accounts unknown
	fails    int
	ok       int // successful sign-ins
	tokens   int
	tokenWho string // the one user the refused tokens name; "-" when several
	evidence []AccessRef
}

type addrDay struct {
	start    time.Time
	accounts map[string]int
	success  int // successful sign-ins after failures from the address
	ok       int // successful sign-ins
	fails    int
	evidence []AccessRef
}

type whoHour struct {
	start    time.Time
	mfa      int
	denied   int
	notFound map[string]bool
	evidence []AccessRef
}

type session struct {
	addrs    []string
	lastSeen time.Time
	user     string
	evidence []AccessRef
}

type attackState struct {
	addrHour map[string]*addrHour
	addrDay  map[string]*addrDay
	who      map[string]*whoHour
	sessions map[string]*session
}

func newAttackState() attackState {
	return attackState{addrHour: map[string]*addrHour{}, addrDay: map[string]*addrDay{}, who: map[string]*whoHour{}, sessions: map[string]*session{}}
}

func (s *attackState) sweep(old time.Time) {
	for k, v := range s.addrHour {
		if v.start.Before(old) {
			delete(s.addrHour, k)
		}
	}
	for k, v := range s.addrDay {
		if v.start.Before(old) {
			delete(s.addrDay, k)
		}
	}
	for k, v := range s.who {
		if v.start.Before(old) {
			delete(s.who, k)
		}
	}
	for k, v := range s.sessions {
		if v.lastSeen.Before(old) {
			delete(s.sessions, k)
		}
	}
}

// attacks accounts one event in the attack detectors.
func (e *Engine) attacks(user string, ev *Event) {
	if ev.Session != "" && ev.Address != "" && ev.Outcome != OutcomeFailure {
		e.sessionUse(user, ev)
	}
	switch {
	case ev.Kind == KindLogin && ev.Outcome == OutcomeFailure:
		e.failedLogin(user, ev)
	case ev.Kind == KindLogin && ev.Outcome == OutcomeSuccess && ev.Address != "":
		e.addrHourOf(ev.Address).ok++
		d := e.addrDayOf(ev.Address)
		d.ok++
		if len(d.accounts) > 0 {
			d.success++
			d.evidence = appendCapped(d.evidence, e.opt.MaxEvidence, accessRef(ev))
			e.scoreCredential(ev.Address)
		}
	case ev.Kind == KindMFA && ev.Outcome == OutcomeFailure:
		w := e.whoOf(user, ev)
		if w == nil {
			return
		}
		w.mfa++
		w.evidence = appendCapped(w.evidence, e.opt.MaxEvidence, accessRef(ev))
		e.countAlert(user, ev, CatMFA, e.w.MFA, w.mfa, w.evidence,
			fmt.Sprintf("%d failed second-factor checks on the account in one hour", w.mfa))
	case ev.Kind == KindToken && ev.Outcome == OutcomeFailure:
		if ev.Address == "" {
			return
		}
		h := e.addrHourOf(ev.Address)
		h.tokens++
		switch {
		case h.tokens == 1:
			h.tokenWho = user
		case h.tokenWho != user:
			h.tokenWho = "-"
		}
		who := h.tokenWho
		if who == "-" {
			who = ""
		}
		h.evidence = appendCapped(h.evidence, e.opt.MaxEvidence, accessRef(ev))
		e.countAlert(who, ev, CatToken, e.w.Token, h.tokens, h.evidence,
			fmt.Sprintf("%d refused tokens from one address in one hour", h.tokens))
	case ev.Outcome == OutcomeNotFound:
		w := e.whoOf(user, ev)
		if w == nil {
			return
		}
		if w.notFound == nil {
			w.notFound = map[string]bool{}
		}
		id := ev.Patient
		if id == "" {
			id = ev.Ref
		}
		if w.notFound[id] || len(w.notFound) >= maxAttackKeys {
			return
		}
		w.notFound[id] = true
		w.evidence = appendCapped(w.evidence, e.opt.MaxEvidence, accessRef(ev))
		e.countAlert(user, ev, CatEnumeration, e.w.Enumeration, len(w.notFound), w.evidence,
			fmt.Sprintf("%d reads of record ids that do not exist in one hour", len(w.notFound)))
	case ev.Outcome == OutcomeDenied:
		w := e.whoOf(user, ev)
		if w == nil {
			return
		}
		w.denied++
		w.evidence = appendCapped(w.evidence, e.opt.MaxEvidence, accessRef(ev))
		e.countAlert(user, ev, CatDenied, e.w.Denied, w.denied, w.evidence,
			fmt.Sprintf("%d refused requests in one hour", w.denied))
	}
}

// whoOf is the hour window of the user, or of the address when the
// user is unknown.
func (e *Engine) whoOf(user string, ev *Event) *whoHour {
	k := user
	if k == "" {
		if ev.Address == "" {
			return nil
		}
		k = "addr:" + ev.Address
	}
	w := e.att.who[k]
	if w == nil || !w.start.Equal(e.hourStart) {
		w = &whoHour{start: e.hourStart}
		e.att.who[k] = w
	}
	return w
}

func (e *Engine) addrHourOf(addr string) *addrHour {
	h := e.att.addrHour[addr]
	if h == nil || !h.start.Equal(e.hourStart) {
		h = &addrHour{start: e.hourStart, accounts: map[string]int{}}
		e.att.addrHour[addr] = h
	}
	return h
}

func (e *Engine) addrDayOf(addr string) *addrDay {
	d := e.att.addrDay[addr]
	if d == nil || !d.start.Equal(e.dayStart) {
		d = &addrDay{start: e.dayStart, accounts: map[string]int{}}
		e.att.addrDay[addr] = d
	}
	return d
}

// successShare is the share of sign-ins from an address that succeeded.
func successShare(ok, fails int) float64 {
	if ok+fails == 0 {
		return 0
	}
	return float64(ok) / float64(ok+fails)
}

// countAlert stores a per-user (or per-address) count finding.
func (e *Engine) countAlert(user string, ev *Event, c Category, r CountRule, n int, evidence []AccessRef, detail string) {
	lo := r.logOdds(n)
	if lo < 0 {
		return
	}
	who, addr := user, ""
	key := e.key(who, addr, string(c), e.dayStart.Format("2006-01-02"))
	switch {
	case c == CatToken:
		// Counted per address: the alert carries the address, and the
		// user when the refused tokens all name one account.
		addr = ev.Address
		key = e.key("", addr, string(c), e.dayStart.Format("2006-01-02"))
	case who == "":
		addr = ev.Address
		key = e.key("", addr, string(c), e.dayStart.Format("2006-01-02"))
	}
	a := Alert{
		Key:         key,
		User:        who,
		Address:     addr,
		Category:    c,
		Categories:  []Category{c},
		Score:       logistic(lo),
		Explanation: detail,
		First:       evidence[0].Time,
		Last:        ev.Time,
		Evidence: Evidence{
			Accesses: append([]AccessRef(nil), evidence...),
			Signals:  []Signal{{Detector: string(c), Value: float64(n), Weight: round(lo), Detail: detail}},
		},
	}
	e.upsert(a)
}

func (e *Engine) failedLogin(user string, ev *Event) {
	if ev.Address == "" {
		return
	}
	acct := user
	if acct == "" {
		acct = "login:" + ev.Login
	}
	h := e.addrHourOf(ev.Address)
	if _, ok := h.accounts[acct]; !ok && len(h.accounts) < maxAttackKeys {
		h.accounts[acct] = 0
		if user == "" {
			h.unknown++
		}
	}
	h.accounts[acct]++
	h.fails++
	h.evidence = appendCapped(h.evidence, e.opt.MaxEvidence, accessRef(ev))
	d := e.addrDayOf(ev.Address)
	d.fails++
	if _, ok := d.accounts[acct]; ok || len(d.accounts) < maxAttackKeys {
		d.accounts[acct]++
	}
	d.evidence = appendCapped(d.evidence, e.opt.MaxEvidence, accessRef(ev))
	e.scoreCredential(ev.Address)
}

// sprayPerAccount is the most failures per account that still looks
// like spraying (attackers stay under lockout thresholds, typically 3
// to 5; NIST SP 800-63B allows up to 100).
const sprayPerAccount = 3

// scoreCredential scores stuffing (the hour) and spraying (the day) of
// an address; a success among the failures raises both.
func (e *Engine) scoreCredential(addr string) {
	h := e.att.addrHour[addr]
	d := e.att.addrDay[addr]
	best, detail := math.Inf(-1), ""
	var ev []AccessRef
	if h != nil && h.start.Equal(e.hourStart) && len(h.accounts) > 1 {
		if lo := e.w.Stuffing.logOdds(len(h.accounts)) - e.w.SignInShare*successShare(h.ok, h.fails); lo > best {
			best = lo
			detail = fmt.Sprintf("%d failed sign-ins on %d accounts from one address in one hour (%d accounts unknown)", h.fails, len(h.accounts), h.unknown)
			ev = h.evidence
		}
	}
	if d != nil && d.start.Equal(e.dayStart) {
		low := 0
		for _, n := range d.accounts {
			if n <= sprayPerAccount {
				low++
			}
		}
		if low > 1 {
			if lo := e.w.Spraying.logOdds(low) - e.w.SignInShare*successShare(d.ok, d.fails); lo > best {
				best = lo
				detail = fmt.Sprintf("few failed sign-ins on each of %d accounts from one address in one day", low)
				ev = d.evidence
			}
		}
		if d.success > 0 && best > math.Inf(-1) {
			best++
			detail += fmt.Sprintf("; %d successful sign-ins followed", d.success)
		}
	}
	if best < 0 || len(ev) == 0 {
		return
	}
	e.upsert(Alert{
		Key:         e.key("", addr, string(CatCredential), e.dayStart.Format("2006-01-02")),
		Address:     addr,
		Category:    CatCredential,
		Categories:  []Category{CatCredential},
		Score:       logistic(best),
		Explanation: detail,
		First:       ev[0].Time,
		Last:        e.now,
		Evidence: Evidence{
			Accesses: append([]AccessRef(nil), ev...),
			Signals:  []Signal{{Detector: string(CatCredential), Value: 1, Weight: round(best), Detail: detail}},
		},
	})
}

// sessionUse flags a session seen from a second address.
func (e *Engine) sessionUse(user string, ev *Event) {
	s := e.att.sessions[ev.Session]
	if s == nil {
		e.att.sessions[ev.Session] = &session{addrs: []string{ev.Address}, lastSeen: ev.Time, user: user,
			evidence: []AccessRef{accessRef(ev)}}
		return
	}
	s.lastSeen = ev.Time
	for _, a := range s.addrs {
		if a == ev.Address {
			return
		}
	}
	if len(s.addrs) >= 8 {
		return
	}
	s.addrs = append(s.addrs, ev.Address)
	s.evidence = appendCapped(s.evidence, e.opt.MaxEvidence, accessRef(ev))
	lo := e.w.Session + math.Log(float64(len(s.addrs)-1))
	detail := fmt.Sprintf("one session used from %d addresses", len(s.addrs))
	e.upsert(Alert{
		Key:         e.key(s.user, "", string(CatSession), ev.Session),
		User:        s.user,
		Address:     ev.Address,
		Category:    CatSession,
		Categories:  []Category{CatSession},
		Score:       logistic(lo),
		Explanation: detail,
		First:       s.evidence[0].Time,
		Last:        ev.Time,
		Evidence: Evidence{
			Accesses: append([]AccessRef(nil), s.evidence...),
			Signals:  []Signal{{Detector: string(CatSession), Value: float64(len(s.addrs)), Weight: round(lo), Detail: detail}},
		},
	})
}
