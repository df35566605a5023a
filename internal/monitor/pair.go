package monitor

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Pair findings: everything about one user's accesses to one patient.
// The demographic detectors (self, family, neighbour, co-worker,
// workforce, VIP) are computed once when the pair is first seen; the
// explanation is looked up for every access. The score is
//
//	PairBias + demographic weights + (Unexplained + VIP + OffHours if some
//	access is unexplained, else the strongest explanation's weight)
//
// so an explanation lowers a score but does not erase a strong signal:
// self-access is reported even when explained, family access explained
// only by the department (not by the user's name on the encounter) is
// reported at low severity.

type pairKey struct{ user, patient string }

type pairState struct {
	static      []Signal // demographic signals, computed once
	staticLO    float64
	staticCats  []Category
	vip         bool
	self        bool // the patient's own account
	n           int  // accesses
	unexplained int
	offHours    int // unexplained accesses outside the roster
	related     int // accesses related to the user's department at another time
	best        strength
	found       []string
	accesses    []AccessRef
	first, last time.Time
}

// workforce indexes practitioners by normalised family name and birth
// date, rebuilt when the directory grows.
type workforce struct {
	size int
	by   map[string][]string // family|birth -> practitioner refs
	demo map[string]demographics
}

func (e *Engine) workforceIndex() *workforce {
	if e.work.by != nil && e.work.size == len(e.dir.Practitioners) {
		return &e.work
	}
	w := workforce{size: len(e.dir.Practitioners), by: map[string][]string{}, demo: map[string]demographics{}}
	for ref, p := range e.dir.Practitioners {
		d := demographicsOf(p.Family, p.Given, p.BirthDate, p.Addresses)
		w.demo[ref] = d
		if d.family != "" && d.birth != "" {
			k := d.family + "|" + d.birth
			w.by[k] = append(w.by[k], ref)
		}
	}
	e.work = w
	return &e.work
}

// newPair computes the demographic signals of a pair.
func (e *Engine) newPair(user string, person *Person, patient string) *pairState {
	ps := &pairState{}
	info := e.dir.Patients[patient]
	if info == nil {
		return ps
	}
	for _, l := range info.Labels {
		if l == "V" || l == "R" {
			ps.vip = true
		}
	}
	if person == nil {
		return ps
	}
	wf := e.workforceIndex()
	pd := e.patientDemographics(patient, info)
	ud := wf.demo[person.Ref]
	add := func(c Category, w float64, detail string) {
		ps.static = append(ps.static, Signal{Detector: string(c), Value: 1, Weight: w, Detail: detail})
		ps.staticLO += w
		ps.staticCats = append(ps.staticCats, c)
	}
	// Workforce: the patient matches a practitioner.
	var match []string
	if pd.family != "" && pd.birth != "" {
		for _, ref := range wf.by[pd.family+"|"+pd.birth] {
			if samePerson(*pd, wf.demo[ref]) {
				match = append(match, ref)
			}
		}
	}
	self := false
	for _, m := range match {
		if m == person.Ref {
			self = true
		}
	}
	if self {
		add(CatSelf, e.w.Self, "the patient is the user (name, birth date)")
		return ps
	}
	if len(match) > 0 {
		cow := false
		for _, m := range match {
			if o := e.dir.Practitioners[m]; o != nil && e.sharesDepartment(person, o) {
				cow = true
			}
		}
		if cow {
			add(CatCoworker, e.w.Coworker, "the patient works in the user's department")
		} else {
			add(CatWorkforce, e.w.Workforce, "the patient is a workforce member")
		}
	}
	am := compareAddresses(pd.addrs, ud.addrs)
	sameName := pd.family != "" && pd.family == ud.family
	switch {
	case sameName && am == addrLine:
		add(CatFamily, e.w.FamilyLine, "the patient shares the user's surname and address")
	case sameName && am >= addrPostal:
		add(CatFamily, e.w.FamilyPostal, "the patient shares the user's surname and postal code")
	case !sameName && am >= addrStreet:
		add(CatNeighbour, e.w.NeighbourStreet, "the patient lives on the user's street")
	case !sameName && am == addrPostal:
		add(CatNeighbour, e.w.NeighbourPostal, "the patient shares the user's postal code")
	}
	return ps
}

// access handles one successful access of user to a patient.
func (e *Engine) access(user string, ev *Event) {
	person := e.dir.Practitioners[user]
	x := e.explain(user, person, ev)
	k := pairKey{user, ev.Patient}
	ps := e.pairs[k]
	if ps == nil {
		ps = e.newPair(user, person, ev.Patient)
		ps.first = ev.Time
		e.pairs[k] = ps
	}
	ps.n++
	ps.last = ev.Time
	off := false
	switch {
	case x.strength == explSelf:
		ps.self = true
	case x.strength == explNone:
		ps.unexplained++
		if person != nil && !e.onShift(person, ev.Time) {
			ps.offHours++
			off = true
		}
	case x.strength == explRelated:
		ps.related++
		if !e.onShift(person, ev.Time) {
			ps.offHours++
			off = true
		}
		if len(ps.found) < e.opt.MaxEvidence && !contains(ps.found, x.found) {
			ps.found = append(ps.found, x.found)
		}
	default:
		if x.strength > ps.best {
			ps.best = x.strength
		}
		if len(ps.found) < e.opt.MaxEvidence && !contains(ps.found, x.found) {
			ps.found = append(ps.found, x.found)
		}
	}
	if x.strength <= explRelated || len(ps.static) > 0 || ps.vip {
		ps.accesses = appendCapped(ps.accesses, e.opt.MaxEvidence, accessRef(ev))
	}
	e.behaviour(user, person, ev, x.strength <= explRelated, x.glass, off)
	if !ps.self && (len(ps.static) > 0 || ps.unexplained > 0 || ps.offHours > 0) {
		e.scorePair(user, ev.Patient, ps)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// scorePair combines a pair's signals and stores the alert when it is
// reported (upsert drops it below the reporting rule).
func (e *Engine) scorePair(user, patient string, ps *pairState) {
	lo := e.w.PairBias + ps.staticLO
	sigs := append([]Signal(nil), ps.static...)
	cats := append([]Category(nil), ps.staticCats...)
	if ps.unexplained > 0 {
		lo += e.w.Unexplained
		sigs = append(sigs, Signal{Detector: string(CatUnexplained), Value: float64(ps.unexplained), Weight: e.w.Unexplained,
			Detail: "no care team, encounter, order, billing or break-the-glass relation found"})
		if ps.vip {
			lo += e.w.VIP
			sigs = append(sigs, Signal{Detector: string(CatVIP), Value: 1, Weight: e.w.VIP, Detail: "restricted or VIP record"})
			cats = append(cats, CatVIP)
		}
		if ps.offHours > 0 {
			lo += e.w.OffHours
			sigs = append(sigs, Signal{Detector: string(CatOffHours), Value: float64(ps.offHours), Weight: e.w.OffHours,
				Detail: "outside the user's rostered hours"})
			cats = append(cats, CatOffHours)
		}
		cats = append(cats, CatUnexplained)
	} else if ps.related > 0 {
		lo += e.w.Related
		sigs = append(sigs, Signal{Detector: "related", Value: float64(ps.related), Weight: e.w.Related,
			Detail: "no care relation at the time; " + strings.Join(ps.found, "; ")})
		if ps.offHours > 0 {
			lo += e.w.OffHours
			sigs = append(sigs, Signal{Detector: string(CatOffHours), Value: float64(ps.offHours), Weight: e.w.OffHours,
				Detail: "outside the user's rostered hours"})
			cats = append(cats, CatOffHours)
		}
		cats = append(cats, CatUnexplained)
	} else {
		w := e.w.ExplainedWeak
		if ps.best >= explStrong {
			w = e.w.ExplainedStrong
		}
		lo += w
		sigs = append(sigs, Signal{Detector: "explained", Value: 1, Weight: w, Detail: strings.Join(ps.found, "; ")})
	}
	if len(cats) == 0 {
		return
	}
	// The main category is the heaviest signal (a VIP who happens to
	// share the user's postal code is a VIP access); unexplained only
	// when nothing else is found.
	main, mw := cats[0], math.Inf(-1)
	for _, sg := range sigs {
		if c := Category(sg.Detector); c != CatUnexplained && slices.Contains(cats, c) && sg.Weight > mw {
			main, mw = c, sg.Weight
		}
	}
	sigs = append(sigs, Signal{Detector: "prior", Value: 1, Weight: e.w.PairBias, Detail: "prior odds of misuse"})
	a := Alert{
		Key:         e.key(user, patient, "pair"),
		User:        user,
		Patients:    []string{patient},
		Category:    main,
		Categories:  cats,
		Score:       logistic(lo),
		Explanation: pairExplanation(ps),
		First:       ps.first,
		Last:        ps.last,
		Evidence: Evidence{
			Accesses: append([]AccessRef(nil), ps.accesses...),
			Found:    append([]string(nil), ps.found...),
			Signals:  sigs,
		},
	}
	if ps.unexplained > 0 || (ps.related > 0 && ps.best == explNone) {
		a.Evidence.Missing = []string{"care team", "encounter (participant or department on shift)", "order", "claim or account", "break-the-glass grant"}
	}
	e.upsert(a)
}

// pairExplanation is the plain-language sentence of a pair alert: no
// names, only counts and relationships.
func pairExplanation(ps *pairState) string {
	var parts []string
	times := "once"
	if ps.n > 1 {
		times = fmt.Sprintf("%d times", ps.n)
	}
	parts = append(parts, "opened this patient's record "+times)
	for _, s := range ps.static {
		parts = append(parts, s.Detail)
	}
	if ps.unexplained > 0 {
		if ps.unexplained == ps.n {
			parts = append(parts, "no care team, encounter, order, billing or break-the-glass relation explains it")
		} else {
			parts = append(parts, fmt.Sprintf("%d of the accesses have no care relation", ps.unexplained))
		}
		if ps.vip {
			parts = append(parts, "the record is restricted (VIP)")
		}
		if ps.offHours > 0 {
			parts = append(parts, fmt.Sprintf("%d outside the user's rostered hours", ps.offHours))
		}
	} else if ps.related > 0 {
		parts = append(parts, "no care relation at the time of access; only a relation with the user's department at another time or through a colleague")
		if ps.offHours > 0 {
			parts = append(parts, fmt.Sprintf("%d outside the user's rostered hours", ps.offHours))
		}
	} else {
		parts = append(parts, "a care relation was found ("+strings.Join(ps.found, "; ")+")")
	}
	return strings.Join(parts, "; ")
}

// maxPatientCache bounds the cache of normalised patients (each about
// 200 bytes); it is emptied when full.
const maxPatientCache = 200_000

func (e *Engine) patientDemographics(ref string, info *PatientInfo) *demographics {
	if d, ok := e.patDemo[ref]; ok {
		return d
	}
	if len(e.patDemo) >= maxPatientCache {
		clear(e.patDemo)
	}
	d := demographicsOf(info.Family, info.Given, info.BirthDate, info.Addresses)
	e.patDemo[ref] = &d
	return &d
}
