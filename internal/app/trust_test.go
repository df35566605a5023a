package app_test

import (
	"html"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/phivault/phivault/internal/apitest"
)

// The trust page's audit-log facts are live: the signed checkpoint opens
// with the published key, and a full verification is recorded.
func TestTrustStatus(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		s.Create(t, map[string]any{"resourceType": "Patient", "gender": "female"})
		st, err := s.App.Transparency().Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !st.LastVerification.IsZero() {
			t.Fatalf("a verification is reported before any ran: %v", st.LastVerification)
		}
		if _, err := s.App.Transparency().Verify(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		st, err = s.App.Transparency().Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.LastVerification.IsZero() || st.Size == 0 || st.VerifierKey != s.App.Transparency().VerifierKey() {
			t.Fatalf("status after verification: %+v", st)
		}
		v, err := note.NewVerifier(st.VerifierKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open([]byte(st.Checkpoint), note.VerifierList(v)); err != nil {
			t.Fatalf("the trust page's checkpoint does not open: %v", err)
		}
		r := s.Do(t, http.MethodGet, "/trust", nil, apitest.H{"Authorization": apitest.NoAuth})
		if r.Status != http.StatusOK {
			t.Fatalf("/trust: %d", r.Status)
		}
		page := html.UnescapeString(string(r.Body))
		if !strings.Contains(page, st.VerifierKey) || strings.Contains(page, "Not available yet") {
			t.Fatalf("/trust does not show the live audit-log facts:\n%s", page)
		}
	})
}
