package monitor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
)

func run(d *Directory, evs ...Event) []Alert {
	e := NewEngine(d, Options{Source: "test"})
	for _, ev := range evs {
		e.Add(ev)
	}
	return e.Alerts(true)
}

func TestPairDetectors(t *testing.T) {
	night := t0.Add(13 * time.Hour)
	cases := []struct {
		name    string
		user    string
		patient string
		at      time.Time
		want    Category // "" for no alert
		rel     []Relation
	}{
		{"self", nurse, "Patient/self", t0, CatSelf, nil},
		{"self explained by the department", nurse, "Patient/self", t0, CatSelf,
			[]Relation{{Kind: RelEncounter, Ref: "Encounter/1", Organizations: []string{"Organization/cardio"}, Start: t0, End: t0}}},
		{"self named on the care team", nurse, "Patient/self", t0, "",
			[]Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{nurse}}}},
		{"family: surname and address", nurse, "Patient/family", t0, CatFamily, nil},
		{"family: surname and postal code", nurse, "Patient/familypostal", t0, CatFamily, nil},
		{"family explained by the department", nurse, "Patient/family", t0, "",
			[]Relation{{Kind: RelEncounter, Ref: "Encounter/1", Organizations: []string{"Organization/cardio"}, Start: t0, End: t0}}},
		{"family treated by the user", nurse, "Patient/family", t0, "",
			[]Relation{{Kind: RelEncounter, Ref: "Encounter/1", Participants: []string{nurse}, Start: t0, End: t0}}},
		{"neighbour: same street", nurse, "Patient/neighbour", t0, CatNeighbour, nil},
		{"neighbour explained", nurse, "Patient/neighbour", t0, "",
			[]Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{nurse}}}},
		{"coworker", nurse, "Patient/cowork", t0, CatCoworker, nil},
		{"workforce elsewhere", nurse, "Patient/far", t0, CatWorkforce, nil},
		{"vip unexplained", nurse, "Patient/vip", t0, CatVIP, nil},
		{"vip explained", nurse, "Patient/vip", t0, "",
			[]Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{nurse}}}},
		{"off-hours unexplained", nurse, "Patient/p1", night, CatOffHours, nil},
		{"on shift unexplained is a candidate only", nurse, "Patient/p1", t0, "", nil},
		{"off-hours explained", nurse, "Patient/p1", night, "",
			[]Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{nurse}}}},
		{"no roster, no off-hours", doc, "Patient/p1", night, "", nil},
		{"the ward's patient, off shift", nurse, "Patient/p1", night, CatOffHours,
			[]Relation{{Kind: RelEncounter, Ref: "Encounter/1", Organizations: []string{"Organization/cardio"}, Start: t0, End: t0}}},
		{"the ward's patient, on shift, outside the window", nurse, "Patient/p1", t0, "",
			[]Relation{{Kind: RelEncounter, Ref: "Encounter/1", Organizations: []string{"Organization/cardio"}, Start: t0.Add(-90 * 24 * time.Hour), End: t0.Add(-80 * 24 * time.Hour)}}},
		{"family treated by a colleague elsewhere", nurse, "Patient/family", t0, CatFamily,
			[]Relation{{Kind: RelEncounter, Ref: "Encounter/1", Participants: []string{cowork}, Organizations: []string{"Organization/surgery"}, Start: t0, End: t0}}},
		{"workforce treated by a colleague", nurse, "Patient/far", t0, "",
			[]Relation{{Kind: RelEncounter, Ref: "Encounter/1", Participants: []string{cowork}, Organizations: []string{"Organization/surgery"}, Start: t0, End: t0}}},
		{"stranger explained", nurse, "Patient/p1", t0, "",
			[]Relation{{Kind: RelEncounter, Ref: "Encounter/1", Organizations: []string{"Organization/cardio"}, Start: t0, End: t0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := testDirectory()
			d.Relations[c.patient] = c.rel
			as := run(d, access(c.at, c.user, c.patient))
			if c.want == "" {
				if len(as) != 0 {
					t.Fatalf("want no alert, got %+v", as)
				}
				return
			}
			if len(as) != 1 {
				t.Fatalf("want one alert, got %d: %+v", len(as), as)
			}
			a := as[0]
			if a.Category != c.want || a.User != c.user || !slices.Equal(a.Patients, []string{c.patient}) {
				t.Fatalf("got %s %s %v, want %s", a.Category, a.User, a.Patients, c.want)
			}
			if a.Score < ReportScore || a.Score > 1 || a.Explanation == "" || len(a.Evidence.Signals) == 0 || len(a.Evidence.Accesses) != 1 {
				t.Fatalf("incomplete alert %+v", a)
			}
			if a.Key != "test|"+c.user+"|"+c.patient+"|pair" {
				t.Fatalf("key %q", a.Key)
			}
		})
	}
}

// Strong demographic signals rank above weak ones, and an explanation
// lowers the score.
func TestPairRanking(t *testing.T) {
	score := func(patient string, rel []Relation) float64 {
		d := testDirectory()
		d.Relations[patient] = rel
		as := run(d, access(t0, nurse, patient))
		if len(as) == 0 {
			return 0
		}
		return as[0].Score
	}
	dept := []Relation{{Kind: RelEncounter, Ref: "Encounter/1", Organizations: []string{"Organization/cardio"}, Start: t0, End: t0}}
	self, selfExpl, family, neighbour := score("Patient/self", nil), score("Patient/self", dept), score("Patient/family", nil), score("Patient/neighbour", nil)
	if !(self > family && family > neighbour && self > selfExpl) {
		t.Fatalf("self %v family %v neighbour %v self explained %v", self, family, neighbour, selfExpl)
	}
	if severityOf(self) != SeverityHigh || severityOf(family) != SeverityHigh {
		t.Fatalf("self and family are high: %v %v", self, family)
	}
}

func TestOwnAccountIsNotAnAlert(t *testing.T) {
	d := testDirectory()
	d.Accounts["User/ada"] = nurse
	d.Relations["Patient/self"] = []Relation{{Kind: RelSelf, Ref: "Patient/self", Participants: []string{nurse}}}
	if as := run(d, access(t0, "User/ada", "Patient/self")); len(as) != 0 {
		t.Fatalf("the patient's own account: %+v", as)
	}
}

func TestExplainedAccessesYieldNothing(t *testing.T) {
	d := testDirectory()
	var evs []Event
	for i := range 50 {
		p := fmt.Sprintf("Patient/p%d", i)
		d.Relations[p] = []Relation{{Kind: RelEncounter, Ref: "Encounter/" + p, Organizations: []string{"Organization/cardio"},
			Start: t0.Add(-24 * time.Hour), End: t0.Add(24 * time.Hour)}}
		evs = append(evs, access(t0.Add(time.Duration(i)*time.Minute), nurse, p))
	}
	if as := run(d, evs...); len(as) != 0 {
		t.Fatalf("explained accesses: %+v", as)
	}
}

func TestAlertsReturnChangesOnce(t *testing.T) {
	d := testDirectory()
	e := NewEngine(d, Options{Source: "test"})
	e.Add(access(t0, nurse, "Patient/family"))
	first := e.Alerts(false)
	if len(first) != 1 {
		t.Fatalf("first call: %d alerts", len(first))
	}
	if again := e.Alerts(true); len(again) != 0 {
		t.Fatalf("unchanged alert returned again: %+v", again)
	}
	// A new access to the same pair updates the same alert.
	e.Add(access(t0.Add(2*time.Minute), nurse, "Patient/family"))
	upd := e.Alerts(false)
	if len(upd) != 1 || upd[0].Key != first[0].Key || len(upd[0].Evidence.Accesses) != 2 {
		t.Fatalf("update: %+v", upd)
	}
	if again := e.Alerts(false); len(again) != 0 {
		t.Fatalf("returned twice: %+v", again)
	}
}

func TestDedupPerPair(t *testing.T) {
	d := testDirectory()
	var evs []Event
	for i := range 10 {
		evs = append(evs, access(t0.Add(time.Duration(i)*time.Minute), nurse, "Patient/neighbour"))
		evs = append(evs, access(t0.Add(time.Duration(i)*time.Minute), nurse, "Patient/family"))
	}
	as := run(d, evs...)
	if len(as) != 2 {
		t.Fatalf("want one alert per pair, got %d", len(as))
	}
	if as[0].Category != CatFamily {
		t.Fatalf("family first (worst first): %s", as[0].Category)
	}
	if !strings.Contains(as[0].Explanation, "10 times") {
		t.Fatalf("explanation counts accesses: %q", as[0].Explanation)
	}
}

func TestEvidenceIsCapped(t *testing.T) {
	d := testDirectory()
	e := NewEngine(d, Options{Source: "test", MaxEvidence: 5})
	for i := range 100 {
		e.Add(access(t0.Add(time.Duration(i)*time.Second), nurse, "Patient/family"))
	}
	as := e.Alerts(true)
	if len(as) != 1 || len(as[0].Evidence.Accesses) != 5 {
		t.Fatalf("evidence: %+v", as)
	}
	if !strings.Contains(as[0].Explanation, "100 times") {
		t.Fatalf("the count is kept beyond the cap: %q", as[0].Explanation)
	}
}

func TestExplanationsHaveNoNames(t *testing.T) {
	d := testDirectory()
	var evs []Event
	at := t0.Add(13 * time.Hour) // off-hours
	for p := range d.Patients {
		evs = append(evs, access(at, nurse, p))
		at = at.Add(5 * time.Second)
	}
	slices.SortFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })
	as := run(d, evs...)
	if len(as) < 5 {
		t.Fatalf("expected several alerts, got %d", len(as))
	}
	var words []string
	for _, p := range d.Practitioners {
		words = append(words, p.Family, p.Given[0], normText(p.Addresses[0].Line), p.Addresses[0].City)
	}
	for _, p := range d.Patients {
		words = append(words, p.Family, normText(p.Addresses[0].Line), p.Addresses[0].City)
	}
	for _, a := range as {
		text := strings.ToLower(a.Explanation)
		for _, s := range a.Evidence.Signals {
			text += " " + strings.ToLower(s.Detail)
		}
		padded := " " + strings.Join(strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }), " ") + " "
		for _, w := range words {
			if strings.Contains(padded, " "+strings.ToLower(w)+" ") {
				t.Fatalf("alert %s names %q: %s", a.Category, w, a.Explanation)
			}
		}
	}
}

func TestUserNamedByRoleOrAccount(t *testing.T) {
	d := testDirectory()
	d.RolePractitioner["PractitionerRole/nurse"] = nurse
	d.Accounts["User/ada"] = nurse
	for _, u := range []string{"PractitionerRole/nurse", "User/ada"} {
		as := run(d, access(t0, u, "Patient/family"))
		if len(as) != 1 || as[0].User != nurse || as[0].Category != CatFamily {
			t.Fatalf("%s: %+v", u, as)
		}
	}
}

// A VIP who shares the user's postal code by chance is a VIP access:
// the main category is the heaviest signal, not the first found.
func TestPairMainCategoryIsTheHeaviest(t *testing.T) {
	d := testDirectory()
	d.Patients["Patient/vipnear"] = &PatientInfo{Ref: "Patient/vipnear", Family: "Starr", Given: []string{"Una"}, BirthDate: "1991-01-01",
		Addresses: []Address{{Line: "80 Birch Road", City: "Springfield", PostalCode: "1000"}}, Labels: []string{"V"}}
	as := run(d, access(t0, nurse, "Patient/vipnear"))
	if len(as) != 1 || as[0].Category != CatVIP || !slices.Contains(as[0].Categories, CatNeighbour) {
		t.Fatalf("got %+v", as)
	}
	// Family on the same street outweighs a VIP label.
	d.Patients["Patient/family"].Labels = []string{"V"}
	if as := run(d, access(t0, nurse, "Patient/family")); len(as) != 1 || as[0].Category != CatFamily {
		t.Fatalf("got %+v", as)
	}
}
