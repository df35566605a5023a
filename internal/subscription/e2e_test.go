package subscription_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/subscription"
	"github.com/phivault/phivault/internal/web"
)

// hit is one request a receiver got.
type hit struct {
	Method, Path string
	Body         []byte
	Header       http.Header
}

// receiver is a rest-hook endpoint: an httptest TLS server that records
// what it gets and answers status.
type receiver struct {
	ts     *httptest.Server
	mu     sync.Mutex
	hits   []hit
	status atomic.Int32
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	r.status.Store(http.StatusOK)
	r.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		r.hits = append(r.hits, hit{Method: req.Method, Path: req.URL.Path, Body: b, Header: req.Header.Clone()})
		r.mu.Unlock()
		w.WriteHeader(int(r.status.Load()))
	}))
	t.Cleanup(r.ts.Close)
	return r
}

// matching returns the hits whose path starts with prefix.
func (r *receiver) matching(prefix string) []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hit
	for _, h := range r.hits {
		if strings.HasPrefix(h.Path, prefix) {
			out = append(out, h)
		}
	}
	return out
}

// start starts phivault with loopback endpoints allowed, the receiver's
// roots trusted and short backoffs.
func start(t *testing.T, driver string, r *receiver, maxAttempts int) *apitest.Server {
	t.Helper()
	return apitest.StartWith(t, driver, func(c *config.Config) {
		c.Subscriptions.AllowLoopback = true
		c.Subscriptions.MaxAttempts = maxAttempts
	}, app.WithSubscriptionOptions(func(o *subscription.Options) {
		o.TLS = r.ts.Client().Transport.(*http.Transport).TLSClientConfig
		o.BaseBackoff, o.MaxBackoff, o.Lease = time.Millisecond, 5*time.Millisecond, subscription.DeliveryTimeout+5*time.Second
	}))
}

// until runs delivery rounds until cond holds (bounded).
func until(t *testing.T, s *apitest.Server, what string, cond func() bool) {
	t.Helper()
	for range 150 {
		if err := s.App.Subscriptions().Round(t.Context()); err != nil {
			t.Fatalf("round: %v", err)
		}
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// settle runs a few rounds (for asserting that nothing more happens).
func settle(t *testing.T, s *apitest.Server) {
	t.Helper()
	for range 4 {
		if err := s.App.Subscriptions().Round(t.Context()); err != nil {
			t.Fatalf("round: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sub(criteria, endpoint, payload string, headers ...string) map[string]any {
	ch := map[string]any{"type": "rest-hook", "endpoint": endpoint}
	if payload != "" {
		ch["payload"] = payload
	}
	if len(headers) > 0 {
		ch["header"] = headers
	}
	return map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "test",
		"criteria": criteria, "channel": ch}
}

func status(t *testing.T, s *apitest.Server, id string) (string, string) {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/fhir/Subscription/"+id, nil, nil).Want(t, http.StatusOK)
	st, _ := r.JSON["status"].(string)
	e, _ := r.JSON["error"].(string)
	return st, e
}

func patient(t *testing.T, s *apitest.Server) string {
	t.Helper()
	return s.Create(t, map[string]any{"resourceType": "Patient", "active": true})
}

func observation(pid string, label string) map[string]any {
	o := map[string]any{"resourceType": "Observation", "status": "final",
		"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "1234-5"}}},
		"subject": map[string]any{"reference": "Patient/" + pid}}
	if label != "" {
		o["meta"] = map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": label}}}
	}
	return o
}

// notifyEvents returns the delivery audit events in the log.
func notifyEvents(t *testing.T, s *apitest.Server) []audit.Event {
	t.Helper()
	if _, err := s.App.Transparency().Integrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	rd := s.App.Transparency().Reader()
	size, err := rd.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	err = rd.ScanLeaves(t.Context(), 0, size, func(_ int64, leaf []byte, v1 bool) error {
		_, b, err := audit.LeafEvent(leaf, v1)
		if err != nil {
			return err
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		if ev.Action == subscription.ActionNotify {
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestHookDelivery: a Subscription by a service token shakes hands
// with its https endpoint, becomes active, and delivers a matching
// change as PUT [endpoint]/Observation/id with the resource, its
// headers and a notification id; a change that does not match is not
// delivered; each delivery is audited.
func TestRestHookDelivery(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			rcv := newReceiver(t)
			s := start(t, d, rcv, 3)
			pid, qid := patient(t, s), patient(t, s)
			sid := s.Create(t, sub("Observation?patient=Patient/"+pid+"&code=http://loinc.org|1234-5", rcv.ts.URL+"/hook",
				subscription.PayloadFHIRJSON, "X-Hook-Token: abc"))
			until(t, s, "active", func() bool { st, _ := status(t, s, sid); return st == "active" })
			hs := rcv.matching("/hook")
			if len(hs) != 1 || hs[0].Method != http.MethodPost || len(hs[0].Body) != 0 || hs[0].Header.Get("X-Hook-Token") != "abc" {
				t.Fatalf("handshake: %+v", hs)
			}
			oid := s.Create(t, observation(pid, ""))
			other := s.Create(t, observation(qid, ""))
			until(t, s, "delivery", func() bool { return len(rcv.matching("/hook/Observation/")) > 0 })
			settle(t, s)
			got := rcv.matching("/hook/Observation/")
			if len(got) != 1 || got[0].Method != http.MethodPut || got[0].Path != "/hook/Observation/"+oid {
				t.Fatalf("deliveries %+v, want one PUT of %s (not %s)", got, oid, other)
			}
			h := got[0]
			var res map[string]any
			if err := json.Unmarshal(h.Body, &res); err != nil || res["id"] != oid || h.Header.Get("Content-Type") != subscription.PayloadFHIRJSON ||
				h.Header.Get("X-Hook-Token") != "abc" || h.Header.Get("X-Phivault-Notification-Id") == "" {
				t.Fatalf("delivery: %v %s %v", err, h.Body, h.Header)
			}
			evs := notifyEvents(t, s)
			var ok bool
			for _, ev := range evs {
				if slices.Contains(ev.Entities, "Subscription/"+sid) && slices.Contains(ev.Entities, "Observation/"+oid+"/_history/1") &&
					ev.Outcome == audit.OutcomeSuccess && strings.Contains(ev.Query, "host=127.0.0.1") && slices.Contains(ev.Patients, "Patient/"+pid) {
					ok = true
				}
				for _, e := range ev.Entities {
					if strings.Contains(e, other) {
						t.Errorf("a delivery event names the unmatched change: %+v", ev)
					}
				}
			}
			if !ok {
				t.Fatalf("no delivery event for %s in %+v", oid, evs)
			}
			// off stops it.
			cur := s.Do(t, http.MethodGet, "/fhir/Subscription/"+sid, nil, nil).Want(t, http.StatusOK).JSON
			cur["status"] = "off"
			s.Do(t, http.MethodPut, "/fhir/Subscription/"+sid, cur, nil).Want(t, http.StatusOK)
			settle(t, s)
			s.Create(t, observation(pid, ""))
			settle(t, s)
			if n := len(rcv.matching("/hook/Observation/")); n != 1 {
				t.Fatalf("%d deliveries after off", n)
			}
		})
	}
}

// actor is an account signed in with a second factor.
type actor struct {
	userID, fhirUser string
	h                apitest.H
}

func newActor(t *testing.T, s *apitest.Server, role, pid string) actor {
	t.Helper()
	sq := s.App.Store.(*sqldb.Store)
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: id, Username: "u" + strings.ToLower(id[:12]), Roles: []identity.Role{identity.Role(role)}}
	if role == "patient" {
		u.FHIRUser = "Patient/" + pid
	} else {
		u.DisplayName = "Sub " + role
		u.FHIRUser = "Practitioner/" + s.Create(t, map[string]any{"resourceType": "Practitioner", "active": true})
	}
	if _, err := sq.Users().Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(sq.Sessions(), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sec, _, err := m.Create(t.Context(), u.ID, role != "patient", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return actor{userID: u.ID, fhirUser: u.FHIRUser, h: apitest.H{"Authorization": apitest.NoAuth,
		"Cookie": web.SessionCookie + "=" + string(sec), httpapi.CSRFHeader: session.CSRFToken(string(sec))}}
}

func careTeam(t *testing.T, s *apitest.Server, pid, ref string) {
	t.Helper()
	s.Create(t, map[string]any{"resourceType": "CareTeam", "status": "active",
		"subject":     map[string]any{"reference": "Patient/" + pid},
		"participant": []any{map[string]any{"member": map[string]any{"reference": ref}}}})
}

func consentDeny(pid, actorRef string) map[string]any {
	return map[string]any{"resourceType": "Consent", "status": "active",
		"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":  map[string]any{"reference": "Patient/" + pid},
		"provision": map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
			"actor": []any{map[string]any{"role": map[string]any{"coding": []any{map[string]any{"code": "PRCP"}}}, "reference": map[string]any{"reference": actorRef}}}}}},
	}
}

// createAs creates res with the actor's session and returns its id.
func createAs(t *testing.T, s *apitest.Server, a actor, res map[string]any) string {
	t.Helper()
	r := s.Do(t, http.MethodPost, "/fhir/"+res["resourceType"].(string), res, a.h).Want(t, http.StatusCreated)
	return r.ID()
}

// TestOwnerAuthorization: criteria are evaluated as the owner's own
// search. A physician's subscription to every Observation delivers only
// the care team's patients' changes: not another patient's, not one
// labelled 42 CFR Part 2, not one whose patient's consent denies the
// physician; once the account is disabled nothing more is delivered and
// the subscription is in error. A patient's subscription delivers only
// their own record's changes.
func TestOwnerAuthorization(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			rcv := newReceiver(t)
			s := start(t, d, rcv, 3)
			a, b, dd := patient(t, s), patient(t, s), patient(t, s)
			doc := newActor(t, s, "physician", "")
			careTeam(t, s, a, doc.fhirUser)
			careTeam(t, s, dd, doc.fhirUser)
			pat := newActor(t, s, "patient", b)
			dsid := createAs(t, s, doc, sub("Observation", rcv.ts.URL+"/doc", ""))
			psid := createAs(t, s, pat, sub("Observation", rcv.ts.URL+"/pat", subscription.PayloadFHIRJSON))
			// The owners may not read Subscriptions (policy): the token does.
			until(t, s, "active", func() bool {
				st1, _ := status(t, s, dsid)
				st2, _ := status(t, s, psid)
				return st1 == "active" && st2 == "active"
			})
			base := len(rcv.matching("/doc"))
			oa := s.Create(t, observation(a, ""))
			ob := s.Create(t, observation(b, ""))
			s.Create(t, observation(a, "42CFRPart2"))
			s.Create(t, consentDeny(dd, doc.fhirUser))
			s.Create(t, observation(dd, ""))
			until(t, s, "deliveries", func() bool {
				return len(rcv.matching("/doc")) > base && len(rcv.matching("/pat/Observation/")) > 0
			})
			settle(t, s)
			if n := len(rcv.matching("/doc")) - base; n != 1 {
				t.Fatalf("the physician's subscription delivered %d notifications, want 1 (only %s)", n, oa)
			}
			pg := rcv.matching("/pat/Observation/")
			if len(pg) != 1 || pg[0].Path != "/pat/Observation/"+ob {
				t.Fatalf("the patient's subscription delivered %+v, want only %s", pg, ob)
			}
			for _, ev := range notifyEvents(t, s) {
				if ev.Agent.User == doc.userID && len(ev.Entities) > 1 && !slices.Contains(ev.Entities, "Observation/"+oa+"/_history/1") {
					t.Errorf("a delivery to the physician names %v", ev.Entities)
				}
			}
			// Disabled: the next matching change is not delivered, and the
			// subscription is in error.
			if _, err := s.App.Store.(*sqldb.Store).Users().SetDisabled(t.Context(), doc.userID, true); err != nil {
				t.Fatal(err)
			}
			s.Create(t, observation(a, ""))
			until(t, s, "error", func() bool { st, _ := status(t, s, dsid); return st == "error" })
			if n := len(rcv.matching("/doc")) - base; n != 1 {
				t.Fatalf("%d deliveries after the owner was disabled", n-1)
			}
			if _, e := status(t, s, dsid); !strings.Contains(e, "owner") {
				t.Fatalf("error text %q", e)
			}
		})
	}
}

// TestRetriesThenError: a receiver that keeps failing gets MaxAttempts
// attempts, then the subscription's status is error with a text that
// names no endpoint or content.
func TestRetriesThenError(t *testing.T) {
	rcv := newReceiver(t)
	s := start(t, "sqlite", rcv, 3)
	pid := patient(t, s)
	sid := s.Create(t, sub("Observation?patient=Patient/"+pid, rcv.ts.URL+"/r", ""))
	until(t, s, "active", func() bool { st, _ := status(t, s, sid); return st == "active" })
	rcv.status.Store(http.StatusServiceUnavailable)
	s.Create(t, observation(pid, ""))
	until(t, s, "error", func() bool { st, _ := status(t, s, sid); return st == "error" })
	if n := len(rcv.matching("/r")) - 1; n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	_, e := status(t, s, sid)
	if e == "" || strings.Contains(e, "127.0.0.1") || strings.Contains(e, pid) {
		t.Fatalf("error text %q", e)
	}
}

// TestEndpointRefusals: a Subscription whose endpoint is not https, or
// names a loopback (without the flag), metadata or private address, is
// refused when written (422), with a message naming the rule.
func TestEndpointRefusals(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	for _, ep := range []string{"http://127.0.0.1:9/hook", "https://127.0.0.1:9/hook", "https://169.254.169.254/latest/meta-data/",
		"https://10.0.0.7/hook", "http://example.org/hook", "ftp://example.org/"} {
		r := s.Do(t, http.MethodPost, "/fhir/Subscription", sub("Observation", ep, ""), nil)
		if r.Status != http.StatusUnprocessableEntity || strings.Contains(string(r.Body), ep) {
			t.Errorf("%s: %s", ep, r)
		}
	}
	for _, c := range []string{"Observation?_count=3", "Observation?nosuchparam=1", "Nope?x=1"} {
		r := s.Do(t, http.MethodPost, "/fhir/Subscription", sub(c, "https://example.org/hook", ""), nil)
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("criteria %s: %s", c, r)
		}
	}
	s.Do(t, http.MethodPost, "/fhir/Subscription", sub("Observation", "https://example.org/hook", ""), nil).Want(t, http.StatusCreated)
}
