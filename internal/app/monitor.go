package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/alerts"
	"github.com/phivault/phivault/internal/monitor/notify"
	"github.com/phivault/phivault/internal/monitor/ownlog"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/webui/console"
)

// AlertPath is the console page of one alert (its id appended): the
// link a notification carries.
const AlertPath = console.AlertPath

// notifyTimeout bounds one round of notifications (the mailer bounds
// each exchange too).
const notifyTimeout = time.Minute

// openMonitor builds, unless monitor.own_log is false, the follower of
// the own log (ADR 0047), which stores into the alerts service:
// the loader reads records through the authorizer's privileged path,
// the cursor is among the log's followers, the duty is led by one
// process of a fleet (sqldb.Leader).
func (a *App) openMonitor() error {
	if !a.Config.Monitor.OwnLogOn() {
		return nil
	}
	sq := a.db
	svc, err := a.Monitor()
	if err != nil {
		return fmt.Errorf("opening the monitoring alerts: %w", err)
	}
	loader, err := ownlog.NewLoader(ownlog.LoaderOptions{Source: record.NewAuthzSource(a.Record), Users: sq.Users(), Grants: sq.Authz()})
	if err != nil {
		return err
	}
	n := &notifier{store: sq, log: a.logger, sent: map[string]monitor.Severity{}}
	if c := a.Config.Monitor.SMTP; c != nil {
		base := strings.TrimSuffix(a.Config.Server.BaseURL, "/")
		n.mail, err = notify.NewMailer(*c, func(id string) string { return base + AlertPath + url.PathEscape(id) })
		if err != nil {
			return fmt.Errorf("opening monitor.smtp: %w", err)
		}
	}
	a.ownLog, err = ownlog.NewFollower(ownlog.FollowerOptions{
		Source: a.tlog.Reader(), Cursors: sq.ExportCursors(), Loader: loader, Leader: sq.Leader(ownlog.CursorName),
		Save: func(ctx context.Context, as []monitor.Alert) ([]string, error) {
			s, err := svc.Save(ctx, as)
			return s.IDs, err
		},
		Notify:   n.notify,
		Interval: a.Config.Monitor.IntervalOrDefault(),
		Logger:   a.logger,
	})
	return err
}

// RunOwnLogMonitor follows the own audit log until ctx ends (Serve runs
// it; a no-op when monitor.own_log is false).
func (a *App) RunOwnLogMonitor(ctx context.Context) {
	if a.ownLog != nil {
		a.ownLog.Run(ctx)
	}
}

// OwnLogMonitor is the follower of the own log, nil when it is off
// (tests step it).
func (a *App) OwnLogMonitor() *ownlog.Follower { return a.ownLog }

// notifier sends the notifications of high-severity alerts: an email
// when monitor.smtp is set (the SIEM sinks and the export webhook carry
// every alert's "monitor-alert" audit event already). An alert is
// notified once per process when it is first stored as high and open
// and not suppressed, or when an alert this process saw lower becomes
// high.
type notifier struct {
	store storage.MonitorReader
	mail  *notify.Mailer
	log   *slog.Logger

	mu   sync.Mutex
	sent map[string]monitor.Severity // alert id -> last severity seen (bounded)
}

// maxNotified bounds the severities remembered.
const maxNotified = 100000

// freshAlert: an alert created this recently was created by this save
// (or by a leader that crashed before it could notify).
const freshAlert = 5 * time.Minute

func (n *notifier) notify(ctx context.Context, as []monitor.Alert, ids []string) {
	if n.mail == nil {
		return
	}
	var out []notify.Alert
	n.mu.Lock()
	for i, al := range as {
		prev, seen := n.sent[ids[i]]
		if len(n.sent) >= maxNotified {
			clear(n.sent)
		}
		n.sent[ids[i]] = al.Severity
		if al.Severity != monitor.SeverityHigh || prev == monitor.SeverityHigh {
			continue
		}
		row, err := n.store.MonitorAlert(ctx, ids[i])
		if err != nil || row.Suppressed != "" || row.Status != storage.AlertOpen {
			continue
		}
		if !seen && time.Since(row.Created) > freshAlert {
			continue // an older alert this process had not seen: notified when it was created
		}
		out = append(out, notify.Alert{ID: ids[i], Category: string(al.Category), Severity: string(al.Severity), Score: al.Score})
	}
	n.mu.Unlock()
	if len(out) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	if err := n.mail.Send(ctx, out); err != nil {
		n.log.WarnContext(ctx, "privacy monitor: the email of high-severity alerts could not be sent", slog.Int("alerts", len(out)), slog.Any("err", err))
	}
}

// Monitor returns the monitoring alerts service (ADR 0046) on this
// app's database: alerts, triage and ingest of another system's access
// log, sealed with the organisation's data key, MACs by the blind index
// key, every read and change audited.
func (a *App) Monitor() (*alerts.Service, error) {
	return alerts.New(alerts.Options{
		Tx:    sqldb.NewUnit[storage.MonitorTx](a.db),
		Store: a.db,
		Seal:  alerts.KeySealer{Keys: a.Keys},
		MAC:   a.Keys,
		Log:   a.Log,
		// The triage's accounts: the actor's FHIR user (separation of
		// duties) and a rule author's roles (a rule's reach).
		Accounts: monitorAccounts{a.db.Users()},
	})
}

// monitorAccounts is the monitoring service's view of the directory.
type monitorAccounts struct{ d identity.Directory }

func (m monitorAccounts) Account(ctx context.Context, id string) (alerts.Account, error) {
	u, err := m.d.ByID(ctx, id)
	if errors.Is(err, identity.ErrNotFound) {
		return alerts.Account{}, nil
	}
	if err != nil {
		return alerts.Account{}, err
	}
	acc := alerts.Account{FHIRUser: u.FHIRUser}
	for _, r := range u.Roles {
		acc.Roles = append(acc.Roles, string(r))
	}
	return acc, nil
}

// monitorAPI is the service behind /admin/api/monitor, or nil (the
// routes answer 503) if it cannot be built.
func (a *App) monitorAPI() httpapi.Monitor {
	m, err := a.Monitor()
	if err != nil {
		a.logger.Error("monitoring is not available", slog.Any("error", err))
		return nil
	}
	return m
}
