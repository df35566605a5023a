package signin

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/webui/site"
)

// TestPasskeyPages: the second-step and enrolment pages offer a passkey
// (a form and the two same-origin scripts) only when the challenge
// accepts one, and never carry the login challenge.
func TestPasskeyPages(t *testing.T) {
	u := bareUI(t)
	for _, c := range []struct {
		page string
		data func(bool) any
		form string
	}{
		{"mfa", func(on bool) any { return mfaView{Passkey: on} }, `id="passkey-signin"`},
		{"enrol", func(on bool) any { return enrolView{Passkey: on} }, `id="passkey-enrol"`},
	} {
		for _, on := range []bool{false, true} {
			rec := httptest.NewRecorder()
			u.site.Render(rec, httptest.NewRequest("GET", "/login/"+c.page, nil), 200, c.page, site.PageData{Title: "t", CSRF: "tok", Data: c.data(on)})
			body := rec.Body.String()
			has := strings.Contains(body, c.form) && strings.Contains(body, `<script src="/static/webauthn.js" defer></script>`) &&
				strings.Contains(body, `<script src="/static/passkey-ui.js" defer></script>`)
			if has != on {
				t.Errorf("%s with Passkey=%v: passkey form and scripts %v", c.page, on, has)
			}
			if strings.Contains(body, "challenge=") || strings.Contains(body, "phivault_challenge") {
				t.Errorf("%s: the login challenge is on the page", c.page)
			}
		}
	}
}

// bareUI is the sign-in pages with templates and a logger only: enough
// to render.
func bareUI(t *testing.T) *UI {
	t.Helper()
	st, err := site.New(site.Options{IdleTimeout: 15 * time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Site: st})
}
