package main

import (
	"math"
	"testing"

	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/scenario"
)

func TestScore(t *testing.T) {
	truth := []scenario.TruthRow{
		{User: "Practitioner/a", Patient: "Patient/1", Category: monitor.CatFamily},
		{User: "Practitioner/b", Patient: "Patient/2", Category: monitor.CatVIP},
		{User: "Practitioner/c", Patient: "Patient/3", Category: monitor.CatBrowsing},
		{User: "Practitioner/c", Patient: "Patient/4", Category: monitor.CatBrowsing},
		{User: "", Category: monitor.CatCredential, Address: "203.0.113.5"},
		{User: "Practitioner/d", Category: monitor.CatMFA, Address: "198.51.100.7"},
	}
	alerts := []monitor.Alert{
		// right pair, wrong category: found, not exact
		{User: "Practitioner/a", Patients: []string{"Patient/1"}, Category: monitor.CatNeighbour},
		// a false positive pair
		{User: "Practitioner/e", Patients: []string{"Patient/9"}, Category: monitor.CatUnexplained},
		// browsing of c listing one truth patient and one extra: both right
		{User: "Practitioner/c", Patients: []string{"Patient/3", "Patient/8"}, Category: monitor.CatVolume,
			Categories: []monitor.Category{monitor.CatVolume, monitor.CatBrowsing}},
		// the stuffing address, no user, no patient: right
		{Address: "203.0.113.5", Category: monitor.CatCredential},
		// an attack alert on a user with no attack in the truth: wrong
		{User: "Practitioner/f", Category: monitor.CatDenied},
	}
	r := score(truth, alerts)
	// units: pairs a/1, e/9, c/3, c/8 and two patient-less alerts = 6; right: a/1, c/3, c/8, stuffing = 4
	if r.units != 6 || r.correct != 4 {
		t.Fatalf("units %d correct %d, want 6 and 4", r.units, r.correct)
	}
	want := map[monitor.Category][2]float64{ // any, exact
		monitor.CatFamily:     {1, 0},
		monitor.CatVIP:        {0, 0},
		monitor.CatBrowsing:   {0.5, 0.5},
		monitor.CatCredential: {1, 1},
		monitor.CatMFA:        {0, 0},
	}
	for c, w := range want {
		got, _ := r.recall(c, false)
		exact, _ := r.recall(c, true)
		if got != w[0] || exact != w[1] {
			t.Errorf("%s: recall %v exact %v, want %v", c, got, exact, w)
		}
	}
	// main category: family (main neighbour) no, browsing (main volume)
	// no, credential (address, main credential) yes.
	for c, w := range map[monitor.Category]float64{monitor.CatFamily: 0, monitor.CatBrowsing: 0, monitor.CatCredential: 1, monitor.CatMFA: 0} {
		if got, _ := r.recallMain(c); got != w {
			t.Errorf("%s: main-category recall %v, want %v", c, got, w)
		}
	}
	// An attack row with a user is matched by the user in the main
	// category, not by the address alone.
	r = score(truth[5:], []monitor.Alert{{Address: "198.51.100.7", Category: monitor.CatMFA}})
	if got, _ := r.recallMain(monitor.CatMFA); got != 0 {
		t.Errorf("an alert without the row's user: main-category recall %v", got)
	}
	r = score(truth[5:], []monitor.Alert{{User: "Practitioner/d", Category: monitor.CatMFA}})
	if got, _ := r.recallMain(monitor.CatMFA); got != 1 {
		t.Errorf("an alert with the row's user: main-category recall %v", got)
	}
	r = score(truth, alerts)
	if m := r.macro(false); math.Abs(m-(1+0+0.5+1+0)/5) > 1e-9 {
		t.Errorf("macro recall %v", m)
	}
	if _, ok := r.recall(monitor.CatSelf, false); ok {
		t.Error("a category with no truth row has a recall")
	}
}
