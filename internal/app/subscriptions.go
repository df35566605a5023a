package app

import (
	"net/url"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/subscription"
)

// WithSubscriptionOptions lets edit adjust the subscription service's
// options after Open has filled them in (tests: a receiver's TLS roots,
// short backoffs).
func WithSubscriptionOptions(edit func(*subscription.Options)) Option {
	return func(o *openOptions) { o.subs = append(o.subs, edit) }
}

// openSubscriptions builds the subscription service (package
// subscription, ADR 0030): it follows the audit log's write events
// through its own cursor, evaluates criteria as each subscription's
// owner and delivers. The record checks every Subscription written
// against it, and wakes it after every write.
func (a *App) openSubscriptions(oo openOptions) error {
	sq := a.db
	c := a.Config.Subscriptions
	so := subscription.Options{
		Store:       sq.Subscriptions(),
		Record:      a.Record,
		Config:      record.NewSubscriptions(a.Record),
		Guards:      func(p authn.Principal) record.Guard { return a.Authz.For(p) },
		Users:       sq.Users(),
		Tokens:      sq,
		Log:         a.Log,
		Audit:       a.batcher,
		Source:      a.tlog.Reader(),
		Cursors:     sq.ExportCursors(),
		Integrate:   a.tlog.Integrate,
		Criteria:    criteriaCheck{a.Record.Registry()},
		Endpoints:   subscription.EndpointPolicy{AllowLoopback: c.AllowLoopback, AllowPrivate: c.AllowPrivate},
		Holder:      processName(),
		BaseURL:     a.Config.Server.BaseURL + "/fhir",
		MaxAttempts: c.MaxAttempts,
		Now:         time.Now,
		Logger:      a.logger,
	}
	for _, edit := range oo.subs {
		edit(&so)
	}
	s, err := subscription.New(so)
	if err != nil {
		return err
	}
	a.subs = s
	a.Record.SetResourceCheck("Subscription", s.Check)
	authzChanged := a.Authz.Changed
	a.Record.SetWriteHook(func(typ, owner string) {
		authzChanged(typ, owner)
		s.Wake()
	})
	return nil
}

// Subscriptions is the subscription service (tests drive its rounds).
func (a *App) Subscriptions() *subscription.Service { return a.subs }

// criteriaCheck checks criteria's parameters with the search registry,
// whose errors name parameters, never values.
type criteriaCheck struct{ reg *search.Registry }

func (c criteriaCheck) CheckQuery(typ string, vals url.Values) error {
	_, err := c.reg.ParseQuery(typ, vals, false)
	return err
}
