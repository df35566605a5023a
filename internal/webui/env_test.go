package webui_test

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/synth"
)

// env is a real phivault (apitest: TLS, a fresh database on the driver)
// with accounts and synthetic patients for the browser.
type env struct {
	*apitest.Server
	hasher *password.Hasher

	// Clinicians are on the care team of every patient the test loads
	// (authorization lets a clinician reach a patient only through a
	// treatment relationship): their Practitioner references, and the
	// patients loaded so far.
	mu         sync.Mutex
	clinicians []string
	patients   []string
}

// trusted is the test's own in-process caller (no authorization guard).
var trusted = record.Caller{Agent: audit.Agent{User: "webui-test", Client: "cli"}, Purpose: "HOPERAT", Guard: record.Offline()}

// treat puts every clinician created so far on the care team of pid (a
// patient the test stored itself), and those created later too.
func (e *env) treat(t testing.TB, pid string) {
	t.Helper()
	e.mu.Lock()
	e.patients = append(e.patients, pid)
	refs := slices.Clone(e.clinicians)
	e.mu.Unlock()
	for _, ref := range refs {
		e.careTeam(t, pid, ref)
	}
}

// careTeam puts practitioner ref on patient pid's care team.
func (e *env) careTeam(t testing.TB, pid, ref string) {
	t.Helper()
	_, _, err := e.App.Record.Create(t.Context(), trusted, fhir.Resource{"resourceType": "CareTeam", "status": "active",
		"subject":     map[string]any{"reference": "Patient/" + pid},
		"participant": []any{map[string]any{"member": map[string]any{"reference": ref}}}}, "")
	if err != nil {
		t.Fatal(err)
	}
}

// setupAddr is the client address of logins made by the test itself, so
// they do not use the browser's (127.0.0.1) rate-limit bucket.
var setupAddr = netip.MustParseAddr("192.0.2.10")

// start runs phivault on driver; edits change the login service's
// options after the harness's own.
func start(t testing.TB, driver string, edits ...func(*login.Options)) *env {
	t.Helper()
	// Cheap argon2id: these tests are about the pages, not the KDF cost.
	// MaxMemory admits the default cost too: passwords set through the
	// account service (the onboarding page, /auth/enrol) use it.
	h, err := password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 64, Time: 1, Threads: 1},
		MaxMemory: password.DefaultParams().Memory})
	if err != nil {
		t.Fatal(err)
	}
	s := apitest.Start(t, driver, app.WithLoginOptions(func(o *login.Options) {
		o.Hasher = h
		o.AddressLimits.Burst = 1000
		for _, edit := range edits {
			edit(o)
		}
	}))
	return &env{Server: s, hasher: h}
}

// user is an account the browser signs in with.
type user struct {
	Username, Password, Display string
	Secret                      string // TOTP secret once enrolled
	FHIRUser                    string // "Practitioner/<id>" of a clinician the harness created

	mu   sync.Mutex
	last time.Time // time of the last TOTP code handed out
}

// addUser creates an account with a password; enrolled accounts get a
// TOTP secret through the login service's own enrolment flow.
func (e *env) addUser(t testing.TB, username, display string, enrolled bool, roles ...identity.Role) *user {
	t.Helper()
	return e.addAccount(t, identity.User{Username: username, DisplayName: display, Roles: roles}, enrolled)
}

// addAccount creates the account a (username, display name, roles,
// FHIR user) with a password, enrolled in TOTP if asked.
func (e *env) addAccount(t testing.TB, a identity.User, enrolled bool) *user {
	t.Helper()
	username, display := a.Username, a.DisplayName
	if a.FHIRUser == "" && slices.ContainsFunc(a.Roles, func(r identity.Role) bool {
		return r == identity.RolePhysician || r == identity.RoleNurse
	}) {
		st, _, err := e.App.Record.Create(t.Context(), trusted, fhir.Resource{"resourceType": "Practitioner", "active": true}, "")
		if err != nil {
			t.Fatal(err)
		}
		a.FHIRUser = "Practitioner/" + st.ID
		e.mu.Lock()
		e.clinicians = append(e.clinicians, a.FHIRUser)
		pids := slices.Clone(e.patients)
		e.mu.Unlock()
		for _, pid := range pids {
			e.careTeam(t, pid, a.FHIRUser)
		}
	}
	pw := "correct horse battery " + username
	hash, err := e.hasher.Hash(t.Context(), pw)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.Store.(*sqldb.Store).Users().Create(t.Context(), identity.User{ID: id, Username: username, DisplayName: display,
		Roles: a.Roles, FHIRUser: a.FHIRUser, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	u := &user{Username: username, Password: pw, Display: display, FHIRUser: a.FHIRUser}
	if !enrolled {
		return u
	}
	lg := e.App.Login
	res, err := lg.Login(t.Context(), username, pw, setupAddr)
	if err != nil || !res.EnrollmentRequired {
		t.Fatalf("login for enrolment: %v %+v", err, res)
	}
	enr, err := lg.EnrollTOTP(t.Context(), res.Challenge, setupAddr)
	if err != nil {
		t.Fatal(err)
	}
	u.Secret = enr.Key.Secret()
	// Enrol with the previous step's code, so the current and next
	// steps remain for the browser's sign-ins.
	at := time.Now().Add(-30 * time.Second)
	code, err := totp.GenerateCode(u.Secret, at)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := lg.ConfirmTOTP(t.Context(), res.Challenge, code, setupAddr)
	if err != nil {
		t.Fatalf("confirming enrolment: %v", err)
	}
	u.last = at
	p, err := lg.Authenticate(t.Context(), st.Secret.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if err := lg.Logout(t.Context(), p, setupAddr); err != nil {
		t.Fatal(err)
	}
	return u
}

// code returns a TOTP code for a step not used before (each code signs
// in once; the server accepts one step either side of now).
func (u *user) code(t testing.TB) string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	at := time.Now()
	if !at.Truncate(30 * time.Second).After(u.last.Truncate(30 * time.Second)) {
		at = u.last.Add(30 * time.Second)
	}
	if time.Until(at) > 30*time.Second {
		// Both steps ahead are used: wait for the clock.
		time.Sleep(time.Until(at) - 30*time.Second + time.Second)
	}
	u.last = at
	c, err := totp.GenerateCode(u.Secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loadPatients stores n synthetic patients (the demo's generator) and
// returns their ids in order.
func (e *env) loadPatients(t testing.TB, n int) []string {
	t.Helper()
	c := trusted
	e.mu.Lock()
	before := len(e.patients)
	e.mu.Unlock()
	err := synth.Generate(t.Context(), synth.Options{Patients: n, Seed: 7, Start: synth.DefaultStart}, func(_ string, b []byte) error {
		res, err := e.App.Record.Parse(b)
		if err != nil {
			return err
		}
		_, err = e.App.Record.ProcessBundle(t.Context(), c, res, record.ReturnMinimal)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.App.Record.Search(t.Context(), c, "Patient", url.Values{"_count": {"100"}, "_sort": {"_id"}}, record.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Entry []struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(page.Bundle, &b); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range b.Entry {
		ids = append(ids, x.Resource.ID)
	}
	if len(ids) != before+n {
		t.Fatalf("%d patients stored, want %d", len(ids), before+n)
	}
	e.mu.Lock()
	known := slices.Clone(e.patients)
	e.patients = ids
	refs := slices.Clone(e.clinicians)
	e.mu.Unlock()
	var added []string
	for _, id := range ids {
		if !slices.Contains(known, id) {
			added = append(added, id)
		}
	}
	for _, pid := range added {
		for _, ref := range refs {
			e.careTeam(t, pid, ref)
		}
	}
	return added
}

// patient reads a Patient through the API.
func (e *env) patient(t testing.TB, id string) map[string]any {
	t.Helper()
	r := e.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, 200)
	return r.JSON
}

// familyName is the family name of a Patient resource.
func familyName(p map[string]any) string {
	names, _ := p["name"].([]any)
	if len(names) == 0 {
		return ""
	}
	n, _ := names[0].(map[string]any)
	f, _ := n["family"].(string)
	return f
}

// signIn signs u in through the pages (password, then a TOTP code) and
// waits for landing, a CSS selector of the page after sign-in.
func (e *env) signIn(t *testing.T, tb *tab, u *user, landing string) {
	t.Helper()
	tb.do(
		navigate(e.URL+"/login"),
		waitCSS("#login-form"),
		fill("#username", u.Username, "#password", u.Password),
		submit("#login-form button[type=submit]", "#mfa-form"),
		fill("#code", u.code(t)),
		submit("#mfa-form button[type=submit]", landing),
	)
}
