package monitor

import (
	"fmt"
	"testing"
	"time"
)

func auth(at time.Time, k Kind, o Outcome, user, login, addr string) Event {
	return Event{Time: at, Kind: k, Outcome: o, User: user, Login: login, Address: addr}
}

func TestAttackDetectors(t *testing.T) {
	sec := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	cases := []struct {
		name string
		evs  func() []Event
		want Category
		addr string
		user string
	}{
		{"credential stuffing", func() (evs []Event) {
			for i := range 12 {
				evs = append(evs, auth(sec(i*10), KindLogin, OutcomeFailure, "", fmt.Sprintf("guess%d", i), "203.0.113.9"))
			}
			return evs
		}, CatCredential, "203.0.113.9", ""},
		{"password spraying, low and slow", func() (evs []Event) {
			for i := range 14 {
				evs = append(evs, auth(t0.Add(time.Duration(i)*37*time.Minute), KindLogin, OutcomeFailure, fmt.Sprintf("User/u%d", i), "", "198.51.100.7"))
			}
			return evs
		}, CatCredential, "198.51.100.7", ""},
		{"a user mistyping", func() (evs []Event) {
			for i := range 3 {
				evs = append(evs, auth(sec(i*20), KindLogin, OutcomeFailure, nurse, "", "10.0.0.5"))
			}
			return append(evs, auth(sec(80), KindLogin, OutcomeSuccess, nurse, "", "10.0.0.5"))
		}, "", "", ""},
		{"a busy shared gateway", func() (evs []Event) {
			// 150 sign-ins of 150 people in an hour; 8 mistype once.
			for i := range 150 {
				if i%19 == 0 {
					evs = append(evs, auth(sec(i*20), KindLogin, OutcomeFailure, fmt.Sprintf("User/u%d", i), "", "10.9.9.9"))
				}
				evs = append(evs, auth(sec(i*20+5), KindLogin, OutcomeSuccess, fmt.Sprintf("User/u%d", i), "", "10.9.9.9"))
			}
			return evs
		}, "", "", ""},
		{"mfa failures", func() (evs []Event) {
			for i := range 8 {
				evs = append(evs, auth(sec(i*30), KindMFA, OutcomeFailure, nurse, "", "10.0.0.5"))
			}
			return evs
		}, CatMFA, "", nurse},
		{"one mfa failure", func() []Event {
			return []Event{auth(t0, KindMFA, OutcomeFailure, nurse, "", "10.0.0.5")}
		}, "", "", ""},
		{"refused tokens", func() (evs []Event) {
			for i := range 10 {
				evs = append(evs, auth(sec(i), KindToken, OutcomeFailure, "", "", "192.0.2.1"))
			}
			return evs
		}, CatToken, "192.0.2.1", ""},
		{"refused tokens naming one account", func() (evs []Event) {
			for i := range 10 {
				evs = append(evs, auth(sec(i), KindToken, OutcomeFailure, doc, "", "192.0.2.1"))
			}
			return evs
		}, CatToken, "192.0.2.1", doc},
		{"refused tokens naming two accounts", func() (evs []Event) {
			for i := range 10 {
				who := doc
				if i == 7 {
					who = nurse
				}
				evs = append(evs, auth(sec(i), KindToken, OutcomeFailure, who, "", "192.0.2.1"))
			}
			return evs
		}, CatToken, "192.0.2.1", ""},
		{"enumeration", func() (evs []Event) {
			for i := range 12 {
				ev := access(sec(i), doc, fmt.Sprintf("Patient/missing%d", i))
				ev.Outcome = OutcomeNotFound
				evs = append(evs, ev)
			}
			return evs
		}, CatEnumeration, "", doc},
		{"denied", func() (evs []Event) {
			for i := range 20 {
				ev := access(sec(i), doc, fmt.Sprintf("Patient/p%d", i))
				ev.Outcome = OutcomeDenied
				evs = append(evs, ev)
			}
			return evs
		}, CatDenied, "", doc},
		{"session from two addresses", func() []Event {
			a, b := access(t0, doc, "Patient/p1"), access(t0.Add(time.Minute), doc, "Patient/p1")
			a.Session, b.Session = "s1", "s1"
			b.Address = "203.0.113.50"
			return []Event{a, b}
		}, CatSession, "203.0.113.50", doc},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := testDirectory()
			d.Relations["Patient/p1"] = []Relation{{Kind: RelCareTeam, Ref: "CareTeam/1", Participants: []string{doc}}}
			as := run(d, c.evs()...)
			if c.want == "" {
				if len(as) != 0 {
					t.Fatalf("want nothing, got %+v", as)
				}
				return
			}
			if len(as) != 1 {
				t.Fatalf("want one alert, got %+v", as)
			}
			a := as[0]
			if a.Category != c.want || a.Address != c.addr || a.User != c.user || a.Explanation == "" || len(a.Evidence.Accesses) == 0 {
				t.Fatalf("got %+v", a)
			}
		})
	}
}

func TestSprayingWithASuccessScoresHigher(t *testing.T) {
	var evs []Event
	for i := range 10 {
		evs = append(evs, auth(t0.Add(time.Duration(i)*30*time.Minute), KindLogin, OutcomeFailure, fmt.Sprintf("User/u%d", i), "", "198.51.100.7"))
	}
	base := run(testDirectory(), evs...)
	evs = append(evs, auth(t0.Add(6*time.Hour), KindLogin, OutcomeSuccess, "User/u11", "", "198.51.100.7"))
	hit := run(testDirectory(), evs...)
	if len(base) != 1 || len(hit) != 1 || hit[0].Score <= base[0].Score {
		t.Fatalf("base %+v hit %+v", base, hit)
	}
}
