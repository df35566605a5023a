package alerts_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/alerts"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// A security administrator's rule keeps the attack alert's category
// whatever scope was asked (pen test: scope-user alone covered the
// user for every category), so it never suppresses the user's privacy
// alerts; a privacy officer's user-wide rule still does.
func TestSuppressScopeBoundedByAuthor(t *testing.T) {
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		sec := e.account(t, "", identity.RoleSecurityAdmin)
		po := e.account(t, "", identity.RolePrivacyOfficer)
		saved, err := e.svc.Save(ctx, []monitor.Alert{alertOf("a1", alerts.SourcePhivault, "User/x", monitor.CatDenied, 0.6)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Suppress(ctx, sec, saved.IDs[0], alerts.Scope{User: true}, "a misconfigured scanner"); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.Save(ctx, []monitor.Alert{
			alertOf("a2", alerts.SourcePhivault, "User/x", monitor.CatDenied, 0.6),                // same user, same category: suppressed
			alertOf("a3", alerts.SourcePhivault, "User/x", monitor.CatEnumeration, 0.6),           // another attack category
			alertOf("a4", alerts.SourcePhivault, "User/x", monitor.CatBulk, 0.9, "Patient/p"),     // privacy
			alertOf("a5", alerts.SourcePhivault, "User/x", monitor.CatBrowsing, 0.9, "Patient/q"), // privacy
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Suppressed != 1 {
			t.Errorf("a security admin's user rule suppressed %d alerts, want 1 (its own category only)", got.Suppressed)
		}
		var ev audit.Event
		for _, x := range e.events(t) {
			if x.Action == audit.ActionMonitorSuppress {
				ev = x
			}
		}
		if !slices.Contains(ev.Policies, "scope=user,category") {
			t.Errorf("the rule's audited scope %v, want user,category", ev.Policies)
		}
		// A privacy officer's user-wide rule covers every category.
		b, err := e.svc.Save(ctx, []monitor.Alert{alertOf("b1", alerts.SourcePhivault, "User/y", monitor.CatBulk, 0.6, "Patient/p")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Suppress(ctx, po, b.IDs[0], alerts.Scope{User: true}, "the records clerk's monthly run"); err != nil {
			t.Fatal(err)
		}
		got, err = e.svc.Save(ctx, []monitor.Alert{alertOf("b2", alerts.SourcePhivault, "User/y", monitor.CatBrowsing, 0.6, "Patient/q")})
		if err != nil || got.Suppressed != 1 {
			t.Errorf("a privacy officer's user rule: %+v %v", got, err)
		}
	})
}

// Defence in depth: a rule stored by a security administrator without
// a category (as before the fix) never suppresses a privacy alert at
// Save; an unknown author's rule suppresses nothing.
func TestSaveIgnoresRuleBeyondAuthor(t *testing.T) {
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		sec := e.account(t, "", identity.RoleSecurityAdmin)
		put := func(id, author string) {
			m, err := e.srv.App.Keys.BlindIndex("monitor-user\x00" + alerts.SourcePhivault + "\x00User/x")
			if err != nil {
				t.Fatal(err)
			}
			err = sqldb.NewUnit[storage.MonitorTx](e.srv.App.Store.(*sqldb.Store)).Update(ctx, func(tx storage.MonitorTx) error {
				return tx.InsertMonitorSuppression(ctx, storage.MonitorSuppression{ID: id, Source: alerts.SourcePhivault, User: m,
					Author: author, Created: t0, Body: []byte("sealed")})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		put("r-sec", sec.Agent.User)
		put("r-gone", "usr_00000000000000000000000000000000")
		got, err := e.svc.Save(ctx, []monitor.Alert{
			alertOf("c1", alerts.SourcePhivault, "User/x", monitor.CatBulk, 0.9, "Patient/p"),
			alertOf("c2", alerts.SourcePhivault, "User/x", monitor.CatCredential, 0.9),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Suppressed != 1 {
			t.Errorf("a security admin's category-less rule suppressed %d alerts, want 1 (the attack)", got.Suppressed)
		}
		list, err := e.svc.List(ctx, officer("u-po"), alerts.Filter{})
		if err != nil || !slices.ContainsFunc(list, func(a alerts.Alert) bool { return a.Key == "c1" }) {
			t.Errorf("the privacy alert is not in the queue: %v", err)
		}
	})
}

// Separation of duties: nobody decides, suppresses or takes an alert
// about themselves (their account, or the Practitioner it is bound
// to); the refusal is audited; reading and notes stay; another officer
// decides.
func TestOwnAlertRefused(t *testing.T) {
	eachDriver(t, func(t *testing.T, e env) {
		ctx := t.Context()
		prac := "Practitioner/" + e.srv.Create(t, map[string]any{"resourceType": "Practitioner", "active": true})
		po := e.account(t, prac, identity.RolePrivacyOfficer)
		sec := e.account(t, "", identity.RoleSecurityAdmin)
		other := e.account(t, "", identity.RolePrivacyOfficer)
		saved, err := e.svc.Save(ctx, []monitor.Alert{
			alertOf("s1", alerts.SourcePhivault, prac, monitor.CatSelf, 0.9, "Patient/p"),
			alertOf("s2", alerts.SourcePhivault, "User/"+sec.Agent.User, monitor.CatSession, 0.9),
		})
		if err != nil {
			t.Fatal(err)
		}
		hers, his := saved.IDs[0], saved.IDs[1]
		type check struct {
			name string
			err  error
		}
		_, supErr := e.svc.Suppress(ctx, po, hers, alerts.Scope{User: true}, "my own chart")
		_, supSec := e.svc.Suppress(ctx, sec, his, alerts.Scope{Category: true}, "my own laptop")
		checks := []check{
			{"disposition", e.svc.SetDisposition(ctx, po, hers, storage.AlertFalsePositive, "my own chart")},
			{"reopen", e.svc.SetDisposition(ctx, po, hers, storage.AlertOpen, "")},
			{"suppress", supErr},
			{"assign to self", e.svc.Assign(ctx, po, hers, po.Agent.User)},
			{"security admin disposition", e.svc.SetDisposition(ctx, sec, his, storage.AlertFalsePositive, "me")},
			{"security admin suppress", supSec},
			{"security admin assign to self", e.svc.Assign(ctx, sec, his, sec.Agent.User)},
		}
		for _, c := range checks {
			if !errors.Is(c.err, alerts.ErrOwnAlert) || !errors.Is(c.err, alerts.ErrForbidden) {
				t.Errorf("%s of an alert about oneself: %v, want ErrOwnAlert", c.name, c.err)
			}
		}
		refused := 0
		for _, ev := range e.events(t) {
			if ev.Outcome == audit.OutcomeDenied && slices.Contains(ev.Policies, "refused=own-alert") {
				refused++
			}
		}
		if refused != len(checks) {
			t.Errorf("%d refusals audited, want %d", refused, len(checks))
		}
		// Nor is it given to the person it is about.
		if err := e.svc.Assign(ctx, other, hers, po.Agent.User); !errors.Is(err, alerts.ErrInvalid) {
			t.Errorf("assigning an alert to its subject: %v", err)
		}
		// Reading and notes stay; another officer decides.
		if _, err := e.svc.Get(ctx, po, hers); err != nil {
			t.Errorf("reading one's own alert: %v", err)
		}
		if _, err := e.svc.AddNote(ctx, po, hers, "I looked up my own lab results"); err != nil {
			t.Errorf("a note on one's own alert: %v", err)
		}
		if err := e.svc.Assign(ctx, po, hers, other.Agent.User); err != nil {
			t.Errorf("handing one's own alert to another officer: %v", err)
		}
		if err := e.svc.SetDisposition(ctx, other, hers, storage.AlertConfirmed, ""); err != nil {
			t.Errorf("another officer decides: %v", err)
		}
		if err := e.svc.SetDisposition(ctx, po, his, storage.AlertNeedsInterview, ""); err != nil {
			t.Errorf("the privacy officer decides the security admin's alert: %v", err)
		}
	})
}
