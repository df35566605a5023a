package portal

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
)

func TestPortalAccessQuery(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		wantErr     string
		check       func(t *testing.T, q accessQuery)
	}{
		{name: "empty", query: ""},
		{name: "dates cover the whole end day", query: "from=2026-01-02&to=2026-01-03", check: func(t *testing.T, q accessQuery) {
			if !q.from.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) || !q.to.Equal(time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("range %v – %v", q.from, q.to)
			}
		}},
		{name: "action", query: "action=R", check: func(t *testing.T, q accessQuery) {
			if q.crude != "R" {
				t.Errorf("crude %q", q.crude)
			}
		}},
		{name: "bad action", query: "action=X", wantErr: "action"},
		{name: "bad date", query: "from=yesterday", wantErr: "start date"},
		{name: "who with spaces", query: "who=a+b", wantErr: "person"},
		{name: "who too long", query: "who=" + strings.Repeat("a", maxAgentParam+1), wantErr: "person"},
		{name: "page", query: "before=42", check: func(t *testing.T, q accessQuery) {
			if q.before != 42 {
				t.Errorf("before %d", q.before)
			}
		}},
		{name: "bad page", query: "before=-1", wantErr: "page"},
		{name: "own views", query: "own=1", check: func(t *testing.T, q accessQuery) {
			if !q.own || q.values().Get("own") != "1" {
				t.Errorf("own %v, values %v", q.own, q.values())
			}
		}},
		{name: "bad own", query: "own=yes", wantErr: "page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := parseAccessQuery(v)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, q)
			}
		})
	}
}

func TestPortalWords(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   audit.Event
		want string
	}{
		{"read of a condition", audit.Event{Action: audit.ActionRead, Entities: []string{"Condition/1/_history/2"}}, "looked at your health problems"},
		{"search of observations", audit.Event{Action: audit.ActionSearch, Query: "Observation?patient&code"}, "searched your results and measurements"},
		{"everything", audit.Event{Action: audit.ActionEverything, Entities: []string{"Patient/p"}}, "copied the whole of your details"},
		{"access log read", audit.Event{Action: audit.ActionSearch, Query: "AuditEvent?patient"}, "searched the access log of your record"},
		{"unknown action and type", audit.Event{Action: "policy-explain", Entities: []string{"Flag/1"}}, "policy explain your record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := whatText(tc.ev); got != tc.want {
				t.Errorf("whatText = %q, want %q", got, tc.want)
			}
		})
	}
	for code, want := range map[string]string{"TREAT": "your care", "ETREAT": "emergency access", "PATRQT": "at your request",
		"HPAYMT": "payment", "HOPERAT": "operations", "HRESCH": "research", "": "not recorded", "XYZ": "XYZ"} {
		if got := purposeText(code); got != want {
			t.Errorf("purposeText(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestPortalConsentSummary(t *testing.T) {
	if got := consentSummary(currentConsent{}); len(got) != 1 || !strings.Contains(got[0], "not made any sharing choices") {
		t.Errorf("no consent: %q", got)
	}
	got := strings.Join(consentSummary(currentConsent{ID: "x", Withheld: []string{"PSY", "HIV"}, Shared: []string{"42CFRPart2"},
		Blocked: []blockChoice{{Ref: "Practitioner/1", Name: "Dr Who"}, {Ref: "Practitioner/2"}}}), "\n")
	for _, want := range []string{"Hidden from everyone, your care team included: mental health, HIV and AIDS.",
		"Shared with every clinician who treats you: substance use treatment records protected by federal law (42 CFR Part 2).",
		"Dr Who may not see any of your record.", "a person may not see any of your record."} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	if got := consentSummary(currentConsent{ID: "x"}); !strings.Contains(got[0], "care team") {
		t.Errorf("empty consent: %q", got)
	}
}

func TestPortalConsentID(t *testing.T) {
	if got := consentID("abc"); got != "privacy-abc" {
		t.Errorf("consentID(abc) = %q", got)
	}
	long := strings.Repeat("a", 60) + "1234"
	if got := consentID(long); len(got) != 64 || !strings.HasSuffix(got, "1234") {
		t.Errorf("consentID of a 64-character id = %q (%d)", got, len(got))
	}
}

// FuzzPortalAccessQuery: any query string parses or is refused, never
// panics, and what is accepted stays within the documented bounds.
func FuzzPortalAccessQuery(f *testing.F) {
	for _, s := range []string{"", "from=2026-01-02&to=2026-01-03&action=R&who=abc&before=9", "who=%00", "before=99999999999999999999", "to=2026-02-30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseAccessQuery(v)
		if err != nil {
			return
		}
		if len(q.agent) > maxAgentParam || q.before < 0 || !strings.Contains("CRUDE", q.crude) {
			t.Fatalf("accepted out of bounds: %+v", q)
		}
	})
}

func TestWhatText(t *testing.T) {
	for _, tc := range []struct {
		ev   audit.Event
		want string
	}{
		{audit.Event{Action: audit.ActionRead, Entities: []string{"Patient/p1"}}, "looked at your details"},
		{audit.Event{Action: audit.ActionSearch, Query: "Observation?patient"}, "searched your results and measurements"},
		{audit.Event{Action: audit.ActionSearch, Query: "AuditEvent?patient"}, "searched the access log of your record"},
		{audit.Event{Action: audit.ActionAmendmentDecide, Entities: []string{"Amendment/a1"}}, "decided on a correction request about your record"},
		{audit.Event{Action: audit.ActionExport, Entities: []string{"AuditEvent/4", "AuditEvent/3"}}, "made a file of the access log of your record"},
		{audit.Event{Action: audit.ActionExport, Query: "Patient/$summary", Entities: []string{"Patient/p1"}}, "made a copy of your record"},
	} {
		if got := whatText(tc.ev); got != tc.want {
			t.Errorf("whatText(%s %v %q) = %q, want %q", tc.ev.Action, tc.ev.Entities, tc.ev.Query, got, tc.want)
		}
	}
}
