package webui_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/web"
)

// BenchmarkChartPage measures one chart view over HTTPS on SQLite: the
// session check, the Patient read and seven bounded, audited searches,
// and rendering (vitals SVG included).
func BenchmarkChartPage(b *testing.B) {
	e := start(b, "sqlite")
	ids := e.loadPatients(b, 5)
	doc := e.addUser(b, "dr.bench", "Ben Bench", true, identity.RolePhysician)
	res, err := e.App.Login.Login(b.Context(), doc.Username, doc.Password, setupAddr)
	if err != nil {
		b.Fatal(err)
	}
	st, err := e.App.Login.Verify(b.Context(), res.Challenge, "totp", doc.code(b), setupAddr)
	if err != nil {
		b.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsInsecure()}, CheckRedirect: noRedirect}
	req, _ := http.NewRequestWithContext(b.Context(), "GET", e.URL+"/patients/"+ids[0], nil)
	req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: st.Secret.Reveal()})
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		b.SetBytes(n)
	}
}
