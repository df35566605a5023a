package chart

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// TestDeniedPage: a 403 from the record service renders the treatment
// relationship page with the break-the-glass form, escaping nothing odd
// into its action.
func TestDeniedPage(t *testing.T) {
	u := bareUI(t)
	if !chartview.Denied(&record.Error{Kind: record.ErrForbidden}) || chartview.Denied(&record.Error{Kind: record.ErrNotFound}) || chartview.Denied(nil) {
		t.Fatal("denied() misclassifies")
	}
	rec := httptest.NewRecorder()
	u.renderDenied(rec, httptest.NewRequest("GET", "/patients/abc", nil), "abc-123")
	body := rec.Body.String()
	if rec.Code != 403 || !strings.Contains(body, "no treatment relationship") || !strings.Contains(body, `action="/patients/abc-123/break-glass"`) {
		t.Errorf("denied page: %d\n%s", rec.Code, body)
	}
	rec = httptest.NewRecorder()
	u.renderDenied(rec, httptest.NewRequest("GET", "/", nil), `"><script>`)
	if strings.Contains(rec.Body.String(), "break-glass") {
		t.Errorf("an invalid id got a break-the-glass form")
	}
}

func TestSearchStore(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newSearchStore(func() time.Time { return now })
	q := patientQuery{Name: "Smith"}
	id, err := s.put(nil, "ses_a", q)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 32 || strings.Contains(id, "Smith") {
		t.Fatalf("id %q is not opaque", id)
	}
	if got, ok := s.get(id, "ses_a"); !ok || got != q {
		t.Errorf("own search not found")
	}
	if _, ok := s.get(id, "ses_b"); ok {
		t.Errorf("another session reads the search")
	}
	now = now.Add(searchTTL + time.Second)
	if _, ok := s.get(id, "ses_a"); ok {
		t.Errorf("expired search still served")
	}
	for i := 0; i < maxSearches+10; i++ {
		if _, err := s.put(nil, "ses_a", q); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.byID) > maxSearches {
		t.Errorf("store holds %d searches, cap %d", len(s.byID), maxSearches)
	}
	s.dropSession("ses_a")
	if len(s.byID) != 0 {
		t.Errorf("%d searches left after sign-out", len(s.byID))
	}
}

func TestPatientQueryValidate(t *testing.T) {
	for _, c := range []struct {
		q    patientQuery
		want string
	}{
		{patientQuery{}, "Enter a name"},
		{patientQuery{Name: strings.Repeat("a", 101)}, "at most 100"},
		{patientQuery{BirthDate: "01/02/1970"}, "YYYY-MM-DD"},
		{patientQuery{Name: "\xff"}, "not text"},
		{patientQuery{BirthDate: "1970-01-02"}, ""},
		{patientQuery{Identifier: "MRN-1", Name: "O'Brien"}, ""},
	} {
		if got := c.q.validate(); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%+v: %q, want %q", c.q, got, c.want)
		}
	}
}

// TestEmergencyBannerTemplate: the chart shows the banner only while
// there is an unexpired grant (EmergencyUntil set by emergencyUntil).
func TestEmergencyBannerTemplate(t *testing.T) {
	u := bareUI(t)
	for _, until := range []string{"", "15:04 UTC"} {
		rec := httptest.NewRecorder()
		u.site.Render(rec, httptest.NewRequest("GET", "/patients/p", nil), 200, "chart", site.PageData{Title: "Chart", Data: &chartview.Chart{ID: "p", EmergencyUntil: until}})
		body := rec.Body.String()
		has := strings.Contains(body, `role="alert" id="emergency-banner"`) &&
			strings.Contains(body, "Emergency access until "+until+"</strong> — every view is recorded and will be reviewed.")
		if has != (until != "") {
			t.Errorf("EmergencyUntil %q: banner %v", until, has)
		}
	}
}

// bareUI is the chart's pages with templates and a logger only: enough
// to render.
func bareUI(t *testing.T) *UI {
	t.Helper()
	st, err := site.New(site.Options{IdleTimeout: 15 * time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Site: st})
}
