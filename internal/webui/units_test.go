package webui

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/webui/site"
)

// bareUI is a UI with templates and a logger only: enough to render.
func bareUI(t *testing.T) *UI {
	t.Helper()
	st, err := site.New(site.Options{IdleTimeout: 15 * time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &UI{site: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
}

// fakeDirectory is an identity.Directory over a slice, for the trust page.
type fakeDirectory struct{ users []identity.User }

func (f fakeDirectory) ByID(context.Context, string) (identity.User, error) {
	return identity.User{}, identity.ErrNotFound
}

func (f fakeDirectory) ByUsername(context.Context, string) (identity.User, error) {
	return identity.User{}, identity.ErrNotFound
}

func (f fakeDirectory) List(_ context.Context, after string, limit int) ([]identity.User, error) {
	var out []identity.User
	for _, u := range f.users {
		if u.Username > after && len(out) < limit {
			out = append(out, u)
		}
	}
	return out, nil
}

// fakeAuditLog is what the Merkle audit log will provide.
type fakeAuditLog struct {
	st  AuditLogStatus
	err error
}

func (f fakeAuditLog) TrustStatus(context.Context) (AuditLogStatus, error) { return f.st, f.err }

func TestTrustPage(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	dir := fakeDirectory{users: []identity.User{
		{Username: "a", Roles: []identity.Role{identity.RolePhysician}, MFAEnrolled: true},
		{Username: "b", Roles: []identity.Role{identity.RoleNurse}},
		{Username: "c", Roles: []identity.Role{identity.RoleBilling}, MFAEnrolled: true},
		{Username: "d", Roles: []identity.Role{identity.RolePatient}},
		{Username: "e", Roles: []identity.Role{identity.RoleNurse}, Disabled: true},
	}}
	for _, c := range []struct {
		name  string
		log   AuditLog
		wants []string
	}{
		{"no audit log yet", nil, []string{"2 of 3", "67%", "Not available yet"}},
		{"audit log", fakeAuditLog{st: AuditLogStatus{Size: 12345, Checkpoint: "phivault.example/log\n12345\nq1w2e3=\n\n— phivault.example/log abc=\n",
			CheckpointTime: now.Add(-time.Minute), VerifierKey: "phivault.example/log+1234abcd+AQID", LastVerification: now.Add(-90 * time.Minute)}},
			[]string{"12345", "phivault.example/log+1234abcd+AQID", "1h30m0s ago", "q1w2e3="}},
		{"audit log failing", fakeAuditLog{err: fmt.Errorf("down")}, []string{"Tamper-evident access log</h3>\n  <p>Not available right now."}},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := bareUI(t)
			u.users, u.auditLog, u.trust, u.now = dir, c.log, &trustCache{}, func() time.Time { return now }
			rec := httptest.NewRecorder()
			if err := u.trustPage(rec, httptest.NewRequest("GET", "/trust", nil)); err != nil {
				t.Fatal(err)
			}
			body := html.UnescapeString(rec.Body.String())
			for _, w := range c.wants {
				if !strings.Contains(body, w) {
					t.Errorf("trust page lacks %q in\n%s", w, body[strings.Index(body, "Tamper"):])
				}
			}
			if strings.Contains(body, `id="fact-patient-keys"`) {
				t.Errorf("encryption facts shown without a keyring")
			}
		})
	}
}
