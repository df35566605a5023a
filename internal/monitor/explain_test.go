package monitor

import (
	"testing"
	"time"
)

func TestExplanations(t *testing.T) {
	day := 24 * time.Hour
	enc := func(start, end time.Time, who []string, orgs ...string) Relation {
		return Relation{Kind: RelEncounter, Ref: "Encounter/1", Participants: who, Organizations: orgs, Start: start, End: end}
	}
	night := t0.Add(13 * time.Hour) // 23:00, outside the day shift
	cases := []struct {
		name  string
		rel   []Relation
		user  string
		at    time.Time
		glass bool
		want  strength
	}{
		{"nothing", nil, nurse, t0, false, explNone},
		{"care team member", []Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{nurse}}}, nurse, t0, false, explStrong},
		{"care team by role", []Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{"PractitionerRole/nurse"}}}, nurse, t0, false, explStrong},
		{"care team ended long ago", []Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{nurse}, End: t0.Add(-30 * day)}}, nurse, t0, false, explRelated},
		{"care team of someone else", []Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{doc}}}, nurse, t0, false, explRelated},
		{"encounter participant", []Relation{enc(t0.Add(-day), t0.Add(day), []string{nurse})}, nurse, t0, false, explStrong},
		{"participant before admission", []Relation{enc(t0.Add(2*day), t0.Add(4*day), []string{nurse})}, nurse, t0, false, explStrong},
		{"participant too early", []Relation{enc(t0.Add(5*day), t0.Add(6*day), []string{nurse})}, nurse, t0, false, explRelated},
		{"participant after discharge", []Relation{enc(t0.Add(-20*day), t0.Add(-10*day), []string{nurse})}, nurse, t0, false, explStrong},
		{"participant too late", []Relation{enc(t0.Add(-40*day), t0.Add(-20*day), []string{nurse})}, nurse, t0, false, explRelated},
		{"open encounter", []Relation{enc(t0.Add(-60*day), time.Time{}, []string{nurse})}, nurse, t0, false, explStrong},
		{"department on shift", []Relation{enc(t0.Add(-day), t0.Add(day), nil, "Organization/cardio")}, nurse, t0, false, explWeak},
		{"department off shift", []Relation{enc(t0.Add(-day), t0.Add(day), nil, "Organization/cardio")}, nurse, night, false, explRelated},
		{"department within shift grace", []Relation{enc(t0.Add(-day), t0.Add(day), nil, "Organization/cardio")}, nurse, t0.Add(9*time.Hour + 30*time.Minute), false, explWeak},
		{"parent department provides", []Relation{enc(t0.Add(-day), t0.Add(day), nil, "Organization/med")}, nurse, t0, false, explWeak},
		{"child department provides", []Relation{enc(t0.Add(-day), t0.Add(day), nil, "Organization/cardio")}, doc, t0, false, explWeak},
		{"doctor without roster at night", []Relation{enc(t0.Add(-day), t0.Add(day), nil, "Organization/cardio")}, doc, night, false, explWeak},
		{"root is not a department", []Relation{enc(t0.Add(-day), t0.Add(day), nil, "Organization/root")}, nurse, t0, false, explNone},
		{"other department", []Relation{enc(t0.Add(-day), t0.Add(day), nil, "Organization/surgery")}, nurse, t0, false, explNone},
		{"a colleague treats the patient", []Relation{enc(t0.Add(-day), t0.Add(day), []string{cowork}, "Organization/surgery")}, nurse, t0, false, explRelated},
		{"department out of window", []Relation{enc(t0.Add(-60*day), t0.Add(-30*day), nil, "Organization/cardio")}, nurse, t0, false, explRelated},
		{"order for the role", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Codes: []string{"radiologist"}, Start: t0.Add(-day), End: t0.Add(-day)}}, rad, t0, false, explWeak},
		{"order for another role", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Codes: []string{"radiologist"}, Start: t0, End: t0}}, nurse, t0, false, explNone},
		{"order names the user", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Participants: []string{rad}, Start: t0, End: t0}}, rad, t0, false, explStrong},
		{"order for the department", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Organizations: []string{"Organization/radiology"}, Start: t0, End: t0}}, rad, t0, false, explWeak},
		{"order to a department for a role", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Codes: []string{"doctor"}, Organizations: []string{"Organization/med"}, Start: t0, End: t0}}, doc, t0, false, explWeak},
		{"order to another department for the role", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Codes: []string{"doctor"}, Organizations: []string{"Organization/med"}, Start: t0, End: t0}}, surg, t0, false, explNone},
		{"order to the department for another role", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Codes: []string{"doctor"}, Organizations: []string{"Organization/cardio"}, Start: t0, End: t0}}, nurse, t0, false, explRelated},
		{"order naming someone else", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Codes: []string{"radiologist"}, Participants: []string{doc}, Start: t0, End: t0}}, rad, t0, false, explNone},
		{"old order", []Relation{{Kind: RelOrder, Ref: "ServiceRequest/1", Codes: []string{"radiologist"}, Start: t0.Add(-90 * day), End: t0.Add(-90 * day)}}, rad, t0, false, explNone},
		{"billing role and a claim", []Relation{{Kind: RelBilling, Ref: "Claim/1"}}, bill, t0, false, explWeak},
		{"billing long after the stay", []Relation{{Kind: RelBilling, Ref: "Claim/1", Start: t0.Add(-100 * day), End: t0.Add(-90 * day)}}, bill, t0, false, explNone},
		{"claim without billing role", []Relation{{Kind: RelBilling, Ref: "Claim/1"}}, nurse, t0, false, explNone},
		{"break-the-glass on the event", nil, nurse, t0, true, explWeak},
		{"break-the-glass grant", []Relation{{Kind: RelBreakGlass, Ref: "Consent/1", Participants: []string{nurse}, Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)}}, nurse, t0, false, explWeak},
		{"expired break-the-glass grant", []Relation{{Kind: RelBreakGlass, Ref: "Consent/1", Participants: []string{nurse}, Start: t0.Add(-3 * time.Hour), End: t0.Add(-2 * time.Hour)}}, nurse, t0, false, explNone},
		{"own account", []Relation{{Kind: RelSelf, Ref: "Patient/p1", Participants: []string{"User/me"}}}, "User/me", t0, false, explSelf},
		{"strongest wins", []Relation{{Kind: RelBilling, Ref: "Claim/1"}, {Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{bill}}}, bill, t0, false, explStrong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := testDirectory()
			d.Relations["Patient/p1"] = c.rel
			e := NewEngine(d, Options{})
			ev := access(c.at, c.user, "Patient/p1")
			ev.BreakGlass = c.glass
			got := e.explain(c.user, d.Practitioners[c.user], &ev)
			if got.strength != c.want {
				t.Fatalf("strength %d (%q), want %d", got.strength, got.found, c.want)
			}
			if c.want != explNone && got.found == "" {
				t.Fatal("an explanation says what it found")
			}
		})
	}
}

func TestShiftHolds(t *testing.T) {
	night := Shift{Start: 22 * time.Hour, End: 6 * time.Hour, Days: []time.Weekday{time.Monday}}
	cases := []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC), true},  // Monday night
		{time.Date(2026, 3, 3, 5, 0, 0, 0, time.UTC), true},   // Tuesday morning, Monday's shift
		{time.Date(2026, 3, 3, 23, 0, 0, 0, time.UTC), false}, // Tuesday night
		{time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), false}, // Monday noon
		{time.Date(2026, 3, 2, 21, 30, 0, 0, time.UTC), true}, // grace
	}
	for _, c := range cases {
		if got := shiftHolds(night, c.at); got != c.want {
			t.Errorf("%s: %v, want %v", c.at, got, c.want)
		}
	}
}

// Rostered hours are local: without Options.Location, the offset the
// source wrote in the timestamp; with it, that zone.
func TestShiftTimeZone(t *testing.T) {
	d := testDirectory()
	d.Relations["Patient/p1"] = []Relation{{Kind: RelEncounter, Ref: "Encounter/1", Organizations: []string{"Organization/cardio"},
		Start: t0.Add(-24 * time.Hour), End: t0.Add(24 * time.Hour)}}
	plus9 := time.FixedZone("", 9*3600)
	// 10:00 at +09:00 is 01:00 UTC: on shift by the source's clock.
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, plus9)
	ev := access(at, nurse, "Patient/p1")
	if x := NewEngine(d, Options{}).explain(nurse, d.Practitioners[nurse], &ev); x.strength != explWeak {
		t.Fatalf("source offset: %d", x.strength)
	}
	ev.Time = at.UTC()
	if x := NewEngine(d, Options{}).explain(nurse, d.Practitioners[nurse], &ev); x.strength != explRelated {
		t.Fatalf("UTC at 01:00: %d", x.strength) // the department's patient, off shift
	}
	if x := NewEngine(d, Options{Location: plus9}).explain(nurse, d.Practitioners[nurse], &ev); x.strength != explWeak {
		t.Fatalf("Options.Location: %d", x.strength)
	}
}
