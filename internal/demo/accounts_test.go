package demo_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/totp"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/demo"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/web"
)

// demoConfig is a fresh SQLite data directory with a key file, listening
// on ts's address.
func demoConfig(t *testing.T, ts *httptest.Server) config.Config {
	t.Helper()
	dir := t.TempDir()
	c := config.Default(dir)
	c.Storage.Driver = "sqlite"
	c.Storage.SQLitePath = c.Path(c.Storage.SQLitePath)
	if err := os.MkdirAll(c.Path("keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Keys.KeyFile = c.Path(c.Keys.KeyFile)
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}
	c.Server.BaseURL = "https://" + ts.Listener.Addr().String()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// printedAccount finds username's password and otpauth URI in the
// printed demo output.
func printedAccount(t *testing.T, out, username string) (pw, uri string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == username {
			pw = f[2]
		}
		if strings.HasPrefix(l, username+" (") && i+1 < len(lines) {
			uri = strings.TrimSpace(lines[i+1])
		}
	}
	if pw == "" {
		t.Fatalf("no password printed for %s in:\n%s", username, out)
	}
	return pw, uri
}

func TestDemoAccountsLogIn(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	t.Cleanup(ts.Close)
	c := demoConfig(t, ts)
	logger := slog.New(slog.DiscardHandler)
	accs, err := app.SeedDemo(t.Context(), c, logger, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.WriteAccounts(c.DataDir, accs); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(c.DataDir, demo.AccountsFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", demo.AccountsFile, fi.Mode().Perm())
	}
	// A restart prints what the first start printed.
	again, err := demo.ReadAccounts(c.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := demo.PrintAccounts(&out, again, filepath.Join(c.DataDir, demo.AccountsFile)); err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	users := demo.Users()
	for _, u := range users {
		pw, uri := printedAccount(t, printed, u.Username)
		if err := password.Check(pw, u.Username, u.Display); err != nil {
			t.Errorf("%s: printed password fails the policy: %v", u.Username, err)
		}
		if u.Role.Workforce() != strings.HasPrefix(uri, "otpauth://totp/") {
			t.Errorf("%s (%s): otpauth URI %q", u.Username, u.Role, uri)
		}
	}
	patient := users[len(users)-1]
	if !strings.Contains(printed, "█") {
		t.Error("no terminal QR code printed")
	}

	a, err := app.Open(t.Context(), c, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ts.Config.Handler = a.Handler()
	ts.StartTLS()
	client := ts.Client()
	post := func(path string, body map[string]string) (int, map[string]any, *http.Response) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(t.Context(), "POST", ts.URL+path, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m, res
	}

	// dr.house: printed password, then a code from the printed secret.
	pw, uri := printedAccount(t, printed, "dr.house")
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.Code(u.Query().Get("secret"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, m, _ := post("/auth/login", map[string]string{"username": "dr.house", "password": pw})
	ch, _ := m["challenge"].(string)
	if st != http.StatusOK || m["mfa_required"] != true || m["enrollment_required"] == true || ch == "" {
		t.Fatalf("login of dr.house: %d %v, want an MFA challenge of an enrolled account", st, m)
	}
	st, m, res := post("/auth/mfa/verify", map[string]string{"challenge": ch, "method": "totp", "code": code})
	if st != http.StatusOK {
		t.Fatalf("verify of dr.house: %d %v", st, m)
	}
	var cookie *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == web.SessionCookie {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie after the second factor")
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/fhir/Patient?_count=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(cookie)
	fres, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(fres.Body)
	fres.Body.Close()
	if fres.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"Bundle"`)) {
		t.Fatalf("GET /fhir/Patient with dr.house's session: %d %s", fres.StatusCode, body)
	}

	// The patient account logs in with its password alone and is linked
	// to a stored Patient.
	ppw, _ := printedAccount(t, printed, patient.Username)
	st, m, _ = post("/auth/login", map[string]string{"username": patient.Username, "password": ppw})
	if st != http.StatusOK || m["mfa_required"] == true {
		t.Fatalf("login of the patient account: %d %v, want a session", st, m)
	}
	var fhirUser string
	for _, x := range again {
		if x.Username == patient.Username {
			fhirUser = x.FHIRUser
		}
	}
	if !strings.HasPrefix(fhirUser, "Patient/") {
		t.Fatalf("patient account fhirUser %q", fhirUser)
	}
	req, err = http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/fhir/"+fhirUser, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(cookie)
	fres, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	fres.Body.Close()
	if fres.StatusCode != http.StatusOK {
		t.Errorf("GET /fhir/%s (the patient account's fhirUser): %d, want the stored Patient", fhirUser, fres.StatusCode)
	}
}
