package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/totp"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// Credential stuffing (issue 3, item 9): a real phivault with the
// production login defaults (argon2id DefaultParams, the default lockout
// and per-address limits, the real clock) takes 10,000 wrong-password
// attempts over 40 of its 50 accounts from 16 loopback source addresses.
const (
	stuffAccounts  = 50
	stuffTargeted  = 40
	stuffAddresses = 16
	stuffAttempts  = 10_000
	stuffWorkers   = 16
)

// stuffServer is phivault over TLS on 127.0.0.1 with default login
// options. Clients pick their source address with stuffClient.
type stuffServer struct {
	url string
	app *app.App
	ts  *httptest.Server
}

func startStuffServer(t *testing.T) *stuffServer {
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
	ts := httptest.NewUnstartedServer(nil)
	c.Server.BaseURL = "https://" + ts.Listener.Addr().String()
	if err := c.Validate(); err != nil {
		ts.Listener.Close()
		t.Fatal(err)
	}
	a, err := app.Open(t.Context(), c, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		ts.Listener.Close()
		t.Fatal(err)
	}
	ts.Config.Handler = a.Handler()
	ts.StartTLS()
	t.Cleanup(func() {
		ts.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return &stuffServer{url: ts.URL, app: a, ts: ts}
}

// client returns an HTTPS client whose connections come from source
// address 127.0.0.last: the server sees it as RemoteAddr, the only
// address login trusts.
func (s *stuffServer) client(last byte) *http.Client {
	tr := s.ts.Client().Transport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, last)}}
	tr.DialContext = d.DialContext
	tr.MaxIdleConnsPerHost = stuffWorkers
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// post sends a JSON body and returns the status and the decoded answer.
func stuffPost(ctx context.Context, c *http.Client, u string, body map[string]string) (int, map[string]any, *http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(b))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m, res, nil
}

// lockedAgents returns the user ids with a lockout event in the audit log.
func lockedAgents(t *testing.T, a *app.App) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	evs, err := a.Transparency().Events(t.Context())
	for _, ev := range evs {
		if ev.Action == audit.ActionLockout {
			out[ev.Agent.User] = true
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCredentialStuffing(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 logins against the production argon2id defaults")
	}
	s := startStuffServer(t)
	ctx := t.Context()
	users := s.app.Store.(*sqldb.Store).Users()

	// The accounts share one real argon2id hash (one KDF run instead of
	// 50); each still has its own row, lockout state and id.
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	phc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	roles := []identity.Role{identity.RolePhysician, identity.RoleNurse, identity.RoleFrontDesk, identity.RoleBilling}
	names := make([]string, stuffAccounts)
	ids := make([]string, stuffAccounts)
	for i := range names {
		id, err := identity.NewID(nil)
		if err != nil {
			t.Fatal(err)
		}
		names[i] = fmt.Sprintf("staff%02d", i)
		u, err := users.Create(ctx, identity.User{ID: id, Username: names[i], Roles: roles[i%len(roles) : i%len(roles)+1], PasswordHash: phc})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = u.ID
	}
	// The legitimate user enrols TOTP before the attack, from its own
	// address that the attack never uses.
	legit := s.client(200)
	defer legit.CloseIdleConnections()
	const legitPW = "a legitimate nurse's passphrase"
	legitHash, err := h.Hash(ctx, legitPW)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Create(ctx, identity.User{ID: id, Username: "legit.nurse", Roles: []identity.Role{identity.RoleNurse}, PasswordHash: legitHash}); err != nil {
		t.Fatal(err)
	}
	st, m, _, err := stuffPost(ctx, legit, s.url+"/auth/login", map[string]string{"username": "legit.nurse", "password": legitPW})
	if err != nil || st != http.StatusOK {
		t.Fatalf("legit login before the attack: %d %v %v", st, m, err)
	}
	ch, _ := m["challenge"].(string)
	st, m, _, err = stuffPost(ctx, legit, s.url+"/auth/mfa/totp/enroll", map[string]string{"challenge": ch})
	if err != nil || st != http.StatusOK {
		t.Fatalf("legit enrol: %d %v %v", st, m, err)
	}
	secret, _ := m["secret"].(string)
	code, err := totp.Code(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st, m, _, err = stuffPost(ctx, legit, s.url+"/auth/mfa/totp/confirm", map[string]string{"challenge": ch, "code": code}); err != nil || st != http.StatusOK {
		t.Fatalf("legit confirm: %d %v %v", st, m, err)
	}

	// Baseline after the server, its pools and the legit client are warm.
	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	var baseMem runtime.MemStats
	runtime.ReadMemStats(&baseMem)

	attackers := make([]*http.Client, stuffAddresses)
	for i := range attackers {
		attackers[i] = s.client(byte(10 + i))
	}
	var counts sync.Map // status -> *atomic.Int64
	var transportErrs atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range stuffWorkers {
		wg.Go(func() {
			for i := range jobs {
				c := attackers[i%stuffAddresses]
				body := map[string]string{"username": names[i%stuffTargeted], "password": fmt.Sprintf("Summer%04d!", i)}
				st, _, _, err := stuffPost(ctx, c, s.url+"/auth/login", body)
				if err != nil {
					transportErrs.Add(1)
					continue
				}
				n, _ := counts.LoadOrStore(st, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	for i := range stuffAttempts {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	got := map[int]int64{}
	counts.Range(func(k, v any) bool { got[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("answers to %d attempts: %v (transport errors %d)", stuffAttempts, got, transportErrs.Load())
	if n := transportErrs.Load(); n != 0 {
		t.Errorf("%d attempts got no HTTP answer: the server stopped answering", n)
	}
	if got[http.StatusOK] != 0 {
		t.Errorf("%d wrong-password attempts succeeded", got[http.StatusOK])
	}
	for st, n := range got {
		if st != http.StatusUnauthorized && st != http.StatusTooManyRequests {
			t.Errorf("%d attempts answered %d, want only 401 and 429", n, st)
		}
	}
	// With 16 addresses of burst 20, at most a few hundred attempts get
	// past the address limit; the rest are 429 before any database or
	// argon2id work.
	if got[http.StatusTooManyRequests] < stuffAttempts*9/10 {
		t.Errorf("%d of %d attempts rate-limited (429), want at least 90%%", got[http.StatusTooManyRequests], stuffAttempts)
	}
	locked := lockedAgents(t, s.app)
	for i := range stuffTargeted {
		if !locked[ids[i]] {
			t.Errorf("targeted account %s has no lockout event", names[i])
		}
	}
	for i := stuffTargeted; i < stuffAccounts; i++ {
		if locked[ids[i]] {
			t.Errorf("untargeted account %s was locked", names[i])
		}
	}
	// A targeted account refuses even its right password now (from a
	// fresh address, so this is the lockout and not the rate limit).
	probe := s.client(150)
	defer probe.CloseIdleConnections()
	if st, m, _, err := stuffPost(ctx, probe, s.url+"/auth/login", map[string]string{"username": names[0], "password": pw}); err != nil || st != http.StatusUnauthorized {
		t.Errorf("right password of locked %s: %d %v %v, want 401", names[0], st, m, err)
	}
	// An untargeted account still accepts its password.
	if st, m, _, err := stuffPost(ctx, probe, s.url+"/auth/login", map[string]string{"username": names[stuffAccounts-1], "password": pw}); err != nil || st != http.StatusOK || m["mfa_required"] != true {
		t.Errorf("untargeted %s: %d %v %v, want an MFA challenge", names[stuffAccounts-1], st, m, err)
	}

	// The server is up, and the legitimate user logs in fully.
	hres, err := legit.Get(s.url + "/healthz")
	if err != nil {
		t.Fatalf("/healthz after the attack: %v", err)
	}
	hres.Body.Close()
	if hres.StatusCode != http.StatusOK {
		t.Errorf("/healthz after the attack: %d", hres.StatusCode)
	}
	st, m, _, err = stuffPost(ctx, legit, s.url+"/auth/login", map[string]string{"username": "legit.nurse", "password": legitPW})
	if err != nil || st != http.StatusOK || m["mfa_required"] != true {
		t.Fatalf("legit login after the attack: %d %v %v", st, m, err)
	}
	ch, _ = m["challenge"].(string)
	// The next step's code: the enrolment used this step's (±1 skew).
	code, err = totp.Code(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	st, m, res, err := stuffPost(ctx, legit, s.url+"/auth/mfa/verify", map[string]string{"challenge": ch, "method": "totp", "code": code})
	if err != nil || st != http.StatusOK {
		t.Fatalf("legit second factor after the attack: %d %v %v", st, m, err)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/fhir/Patient?_count=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range res.Cookies() {
		req.AddCookie(ck)
	}
	fres, err := legit.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	fres.Body.Close()
	if fres.StatusCode != http.StatusOK {
		t.Errorf("legit user's /fhir after the attack: %d", fres.StatusCode)
	}

	// Nothing the attack started outlives it: once the attackers' idle
	// connections are closed, the goroutine count returns near the
	// baseline, and the heap has not grown by more than the argon2id
	// working memory of a few concurrent logins.
	for _, c := range attackers {
		c.CloseIdleConnections()
	}
	goroutines := runtime.NumGoroutine()
	for range 200 {
		if goroutines <= baseGoroutines+8 {
			break
		}
		time.Sleep(10 * time.Millisecond) // server-side connection goroutines notice the close
		goroutines = runtime.NumGoroutine()
	}
	if goroutines > baseGoroutines+8 {
		t.Errorf("goroutines: %d after the attack, %d before", goroutines, baseGoroutines)
	}
	runtime.GC()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	t.Logf("heap in use: %d MiB before, %d MiB after", baseMem.HeapInuse>>20, mem.HeapInuse>>20)
	if grown := int64(mem.HeapInuse) - int64(baseMem.HeapInuse); grown > 128<<20 {
		t.Errorf("heap in use grew by %d MiB over the attack", grown>>20)
	}
}
