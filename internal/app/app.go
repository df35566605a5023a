package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/bulk"

	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/audit/tlog"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/ledger"
	"github.com/phivault/phivault/internal/observe"
	"github.com/phivault/phivault/internal/webui/authorize"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/time/rate"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/attempt"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/sso"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/keys/lifecycle"
	"github.com/phivault/phivault/internal/monitor/ownlog"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/sqlite"
	"github.com/phivault/phivault/internal/subscription"
	"github.com/phivault/phivault/internal/webui"
)

// Version is the one version of phivault: the capability statement and
// "phivault version" report it.
const Version = "0.1.0"

// kmsTimeout bounds every call to a remote KMS.
const kmsTimeout = 10 * time.Second

// attemptFlushTimeout bounds the last report of refused attempts at
// Close (a few events through the batcher).
const attemptFlushTimeout = 10 * time.Second

// App is an opened phivault instance.
type App struct {
	Config config.Config
	// Store is the database as the resource store (storage.Store); db is
	// the same database typed, from which Open hands each component the
	// narrow view it needs (Users, Sessions, the units of work of the
	// domains' audited changes, ADR 0024): nothing downcasts Store.
	Store storage.Store
	db    *sqldb.Store
	// validator is the record's FHIR validator; serve compiles its
	// schema in the background at start (serve.go).
	validator *fhir.Validator
	Keys      *keys.Keyring
	Record    *record.Service
	Log       *audit.Log
	batcher   *audit.Batcher
	tlog      *tlog.Log // the Merkle tree side of the audit log (package tlog)
	ledger    *keys.LedgerKey
	// authRows authenticates rows that grant access and keys the lookup
	// hashes of bearer secrets (ADR 0022, authrows.go).
	authRows *keys.AuthRowKey
	auth     *authn.Authenticator
	logger   *slog.Logger
	// Login is interactive sign-in and session authentication (DESIGN §7).
	Login *login.Service
	// SMART is the SMART on FHIR authorization server; nil without a
	// configured base URL.
	SMART *smart.Server
	// SSO is enterprise sign-in through an OIDC IdP; nil when the oidc
	// section is absent or disabled, or discovery failed at start-up.
	SSO *sso.Service
	// AuditIndex searches the audit log (FHIR AuditEvent); nil when the
	// store has no index tables.
	AuditIndex *index.Reader

	indexer *index.Follower // keeps the audit index up with the log
	// attempts limits the audit events of unauthenticated requests and
	// reports what it refused (runBackground, Close).
	attempts *attempt.Limiter
	// idleTimeout is the sessions' idle timeout (0: the session
	// package's default), which the web UI's warning counts down.
	idleTimeout time.Duration
	// Authz decides every FHIR request (Cedar policies); BreakGlass
	// opens emergency grants; Desk is the privacy officer's review queue.
	Authz      *authz.Authorizer
	BreakGlass *authz.BreakGlass
	Desk       *authz.Desk

	// keyLife runs key rotation and the KEK epoch job (KeyLifecycle).
	keyLife *lifecycle.Manager
	// subs delivers FHIR Subscriptions (subscriptions.go).
	subs *subscription.Service
	// bulk runs FHIR Bulk Data exports (bulk.go).
	bulk *bulk.Service
	// ownLog follows the own audit log into the monitoring alerts
	// (Monitor), nil when off (monitor.go).
	ownLog *ownlog.Follower
	// backupJob takes scheduled backups and drills (backup.go), nil
	// without a "backup" section; backupStoreName is its destination.
	backupJob       *schedule.Job
	backupStoreName string
	// release lets the data directory go (HoldingDataDir); nil if not held.
	release func()

	// metrics is the registry and the observers (observe.go); tracing
	// the span exporter, nil when tracing is off.
	metrics *observe.Metrics
	tracing *observe.Tracing
}

// Option adjusts [Open]. Tests use them to inject a clock and limits.
type Option func(*openOptions)

type openOptions struct {
	now func() time.Time
	// scans: the command reads the database from end to end (verify):
	// SQLite readers read through a memory map (sqlite.Options.MapReaders).
	scans bool
	// authzNow is the authorizer's clock (the age of its cached facts);
	// nil is time.Now.
	authzNow func() time.Time
	login    []func(*login.Options)
	idp      *http.Client
	subs     []func(*subscription.Options)
	bulk     []func(*bulk.Options)
	hold     *holding
	spans    sdktrace.SpanExporter // WithSpanExporter (observe.go)
}

type holding struct {
	exclusive bool
	command   string
}

// HoldingDataDir makes Open hold the data directory (HoldDataDir) until
// Close: shared for the commands that may run beside a server,
// exclusive for one that must run alone. command names the holder in
// the message of a process refused.
func HoldingDataDir(exclusive bool, command string) Option {
	return func(o *openOptions) { o.hold = &holding{exclusive: exclusive, command: command} }
}

// WithOIDCClient sets the HTTP client used to reach the OIDC IdP
// (discovery, JWKS, token); it must have a timeout. Default: a client
// with the system roots and a 10 s timeout.
func WithOIDCClient(c *http.Client) Option {
	return func(o *openOptions) { o.idp = c }
}

// WithClock makes authentication (login, lockout, rate limits, sessions)
// read the time from now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *openOptions) { o.now = now }
}

// ScanningReads says the command reads the database from end to end
// (verify, audit verify, exports) rather than serving random reads:
// SQLite's readers then read through a memory map, which scans faster
// and serves random reads slower (sqlite.Options.MapReaders).
func ScanningReads() Option {
	return func(o *openOptions) { o.scans = true }
}

// WithAuthzClock sets the authorizer's clock: the age of its cached
// facts and of its change-feed polls (ADR 0043). A fleet test freezes it
// so that only the change feed can make a process see another's write.
func WithAuthzClock(now func() time.Time) Option {
	return func(o *openOptions) { o.authzNow = now }
}

// WithLoginOptions lets edit adjust the login service's options after
// Open has filled them in (lockout policy, address limits, hasher).
func WithLoginOptions(edit func(*login.Options)) Option {
	return func(o *openOptions) { o.login = append(o.login, edit) }
}

// Open opens everything the configuration names. The caller must Close.
func Open(ctx context.Context, c config.Config, logger *slog.Logger, opts ...Option) (*App, error) {
	oo := openOptions{now: time.Now}
	for _, o := range opts {
		o(&oo)
	}
	if oo.hold == nil {
		return open(ctx, c, logger, oo)
	}
	release, err := HoldDataDir(c, oo.hold.exclusive, oo.hold.command)
	if err != nil {
		return nil, err
	}
	a, err := open(ctx, c, logger, oo)
	if err != nil {
		release()
		return nil, err
	}
	a.release = release
	return a, nil
}

func open(ctx context.Context, c config.Config, logger *slog.Logger, oo openOptions) (_ *App, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	httpClient := &http.Client{Timeout: kmsTimeout}
	kek, err := keys.OpenKEK(ctx, keys.KEKSource{KeyFile: c.Keys.KeyFile, URI: c.Keys.KMSURI, Token: c.Keys.KMSToken()}, httpClient)
	if err != nil {
		return nil, fmt.Errorf("opening the key-encryption key (keys.key_file / keys.kms_uri): %w", err)
	}
	st, err := openStore(ctx, c.Storage, c.Timeouts, oo.scans)
	if err != nil {
		return nil, err
	}
	kr := keys.NewKeyring(kek, keys.Options{Destroyed: lifecycle.DestroyedKEKs(st.Epochs())})
	if err := loadSystemKeys(ctx, st, kr); err != nil {
		st.Close()
		return nil, err
	}
	reg, err := search.New()
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("loading search parameters: %w", err)
	}
	a := &App{Config: c, Store: st, db: st, Keys: kr, logger: logger}
	if a.metrics, a.tracing, err = openObservability(ctx, c.Observability, oo); err != nil {
		st.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = a.stopTracing() // the exporter's goroutine; again after a.Close is a no-op
		}
	}()
	a.Log = audit.NewLog(kr)
	a.keyLife = lifecycle.New(lifecycle.Deps{Config: c.Keys, Keys: kr, Store: st, Epochs: st.Epochs(), Compactor: st, Alerts: st,
		Log: a.Log, Logger: logger, Holder: processName()})
	if err := a.openTransparency(ctx); err != nil {
		st.Close()
		return nil, err
	}
	lk, err := ledger.OpenKey(ctx, st, kr, a.Log)
	if err != nil {
		_ = a.tlog.Close()
		st.Close()
		return nil, err
	}
	a.ledger = lk
	ark, err := a.openAuthRows(ctx, st)
	if err != nil {
		_ = a.tlog.Close()
		st.Close()
		return nil, err
	}
	a.authRows = ark
	a.batcher = audit.NewBatcher(a.tlog.Appender(st), audit.BatcherOptions{Observer: a.metrics.Audit()})
	a.validator = fhir.NewValidator()
	a.Record = record.New(record.Deps{
		Store:     a.tlog.Store(st),
		Keys:      kr,
		Validator: a.validator,
		Registry:  reg,
		Log:       a.Log,
		Batcher:   a.batcher,
		Now:       time.Now,
		NewID:     func() string { return uuid.NewString() },
		Limits:    fhir.Limits{MaxBytes: c.Limits.MaxBodyBytes, MaxEntries: c.Limits.MaxBundleEntries},
		Logger:    logger,
		Ledger:    lk,
	})
	a.attempts = attempt.New(attempt.Options{
		Rate: rate.Limit(float64(c.Limits.AttemptsPerMinute) / 60), Burst: c.Limits.AttemptBurst,
		Recorder: auditRecorder{log: a.Log, batch: a.batcher}, Logger: logger,
	})
	a.Record.SetEraseHook(a.keyLife.Wake)
	a.auth = authn.NewAuthenticator(st, nil, authn.WithHasher(ark))
	// From here on a.Close releases everything, the log integrator's
	// goroutine included.
	if err := a.openAuthz(ctx, oo.authzNow); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openLogin(oo); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openSMART(ctx, oo.now); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openSSO(ctx, oo); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openAuditIndex(); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openSubscriptions(oo); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openBulk(oo); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openMonitor(); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openBackup(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.registerMetrics(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// PolicyDir is where a deployment's policy overrides live, under the
// data directory: *.cedar files there replace the embedded defaults.
const PolicyDir = "policies"

// openAuthz loads and validates the policy set (a bad file stops the
// start), records its version when it changed (audited), and builds the
// authorizer, break-the-glass and the review desk.
func (a *App) openAuthz(ctx context.Context, now func() time.Time) error {
	sq := a.db
	pol, err := authz.LoadPolicies(filepath.Join(a.Config.DataDir, PolicyDir))
	if err != nil {
		return fmt.Errorf("loading authorization policies (%s): %w", filepath.Join(a.Config.DataDir, PolicyDir), err)
	}
	if _, err := RecordPolicyVersion(ctx, sqldb.NewUnit[authz.Tx](sq), a.Log, pol, audit.Agent{User: "phivault", Client: "serve"}); err != nil {
		return err
	}
	authzSrc := record.NewAuthzSource(a.Record) // the authorizer's privileged read path, handed only to it
	a.Authz, err = authz.New(authz.Options{Policies: pol, Source: authzSrc, Users: sq.Users(), Grants: sq.Authz(), Now: now, Observer: a.metrics.Authz()})
	if err != nil {
		return fmt.Errorf("opening authorization: %w", err)
	}
	a.Record.SetWriteHook(a.Authz.Changed)
	a.BreakGlass, err = authz.NewBreakGlass(authz.BreakGlassOptions{Authorizer: a.Authz, Writer: authz.Grants{Tx: sqldb.NewUnit[authz.Tx](sq)}, Notes: authzSrc,
		Log: a.Log, Recorder: a.batcher, NewID: func() string { return uuid.NewString() }})
	if err != nil {
		return fmt.Errorf("opening break-the-glass: %w", err)
	}
	a.Desk = authz.NewDesk(sq.Authz(), sqldb.NewUnit[authz.Tx](sq), authzSrc, a.Log, a.batcher, nil)
	return nil
}

// RecordPolicyVersion stores pol's content hash with the time if it
// differs from the version in force, with a policy-change audit event
// in the same transaction. It reports whether it recorded one.
func RecordPolicyVersion(ctx context.Context, st authz.Updater, log *audit.Log, pol *authz.Policies, agent audit.Agent) (bool, error) {
	now := time.Now()
	ev := audit.Event{Time: now, Action: audit.ActionPolicyChange, Outcome: audit.OutcomeSuccess, Agent: agent,
		Policies: []string{"hash=" + pol.Hash(), "source=" + pol.Source()}}
	rec, err := log.Seal(ev)
	if err != nil {
		return false, fmt.Errorf("recording the policy version: %w", err)
	}
	changed, err := authz.RecordPolicyVersion(ctx, st, pol.Hash(), pol.Source(), now, rec.Body)
	if err != nil {
		return false, err
	}
	return changed, nil
}

// openLogin builds the login service over the SQL store.
func (a *App) openLogin(oo openOptions) error {
	sq := a.db
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		return fmt.Errorf("opening login: %w", err)
	}
	lo := login.Options{
		Users: sq.Users(), Store: sq.Logins(), Tx: sqldb.NewUnit[login.Tx](sq), Sessions: sq.Sessions(), Keys: a.Keys,
		Log: a.Log, Audit: a.batcher, Hasher: h, Now: oo.now, Logger: a.logger,
		PatientMFA: login.PatientMFA(a.Config.Auth.PatientMFA), // validated by config; "" is the default
	}
	// Passkeys need the public origin: the RP ID and the one accepted
	// origin come from server.base_url (ADR 0009).
	if a.Config.Server.BaseURL != "" {
		rp, err := passkey.New(passkey.Config{BaseURL: a.Config.Server.BaseURL, Now: oo.now})
		switch {
		case errors.Is(err, passkey.ErrIPAddress):
			a.logger.Warn("passkeys disabled: server.base_url names an IP address, not a domain")
		case err != nil:
			return fmt.Errorf("opening login: server.base_url: %w", err)
		default:
			lo.RP, lo.Passkeys = rp, sq.Logins()
		}
	}
	for _, edit := range oo.login {
		edit(&lo)
	}
	a.Login, err = login.New(lo)
	if err != nil {
		return fmt.Errorf("opening login: %w", err)
	}
	a.idleTimeout = lo.SessionOptions.IdleTimeout
	return nil
}

// OpenStore opens the configured database and applies migrations. The
// lock timeout is PostgreSQL's lock_timeout and SQLite's busy_timeout;
// the statement timeout is PostgreSQL's statement_timeout.
func OpenStore(ctx context.Context, c config.Storage, t config.Timeouts) (storage.Store, error) {
	return openStore(ctx, c, t, false)
}

// openStore is OpenStore with the SQL store typed, for Open.
func openStore(ctx context.Context, c config.Storage, t config.Timeouts, scans bool) (*sqldb.Store, error) {
	switch c.Driver {
	case "postgres":
		st, err := postgres.Open(ctx, c.PostgresURL, postgres.Options{StatementTimeout: t.Statement.D(), LockTimeout: t.Lock.D()})
		if err != nil {
			return nil, fmt.Errorf("opening PostgreSQL (storage.postgres_url): %w", err)
		}
		return st, nil
	default:
		st, err := sqlite.Open(ctx, c.SQLitePath, sqlite.Options{BusyTimeout: t.Lock.D(), MapReaders: scans})
		if err != nil {
			return nil, fmt.Errorf("opening SQLite database %s (storage.sqlite_path): %w", c.SQLitePath, err)
		}
		return st, nil
	}
}

// systemKeys are created on first start and wrapped under the KEK.
var systemKeyNames = []ident.Owner{keys.SystemBlindIndex, keys.SystemToken, keys.SystemAudit, keys.SystemLogSigner}

// loadSystemKeys loads the blind-index, token and audit keys, creating
// any that is missing (first start). Concurrent first starts of several
// processes converge: the loser of the insert race reloads.
func loadSystemKeys(ctx context.Context, st storage.Store, kr *keys.Keyring) error {
	recs := make(map[ident.Owner]storage.KeyRecord, len(systemKeyNames))
	err := st.Update(ctx, func(tx storage.Tx) error {
		for _, name := range systemKeyNames {
			rec, err := tx.Key(ctx, name)
			if errors.Is(err, storage.ErrNotFound) {
				rec, err = kr.NewSystemKey(name, time.Now())
				if err != nil {
					return err
				}
				if err := tx.PutKey(ctx, rec); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			recs[name] = rec
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading system keys: %w", err)
	}
	if err := kr.LoadSystemKeys(recs[keys.SystemBlindIndex], recs[keys.SystemToken], recs[keys.SystemAudit]); err != nil {
		return fmt.Errorf("opening system keys (wrong key file for this database?): %w", err)
	}
	return nil
}

// Handler is the HTTP handler of this instance.
func (a *App) Handler() http.Handler {
	accounts := a.adminAccounts()
	// One per-address budget for setting a first password, through the
	// JSON API or the web page (ADR 0034).
	enrolLimiter := password.NewAddressLimiter(password.AddressLimits{})
	return httpapi.New(httpapi.Options{
		Record:        a.Record,
		Authenticator: a.auth,
		Login:         a.Login,
		SMART:         a.SMART,
		SSO:           a.ssoHandler(),
		Accounts:      accounts,
		EnrolLimiter:  enrolLimiter,
		Clients:       a.clientApprovals(),
		AuditLog:      a.auditLog(),
		UI:            a.webUI(accounts, enrolLimiter),
		Authorize:     a.authorizePages(accounts),
		Logger:        a.logger,
		Now:           time.Now,
		BaseURL:       a.Config.Server.BaseURL,
		MaxBodyBytes:  a.Config.Limits.MaxBodyBytes,
		CORSOrigins:   a.Config.Server.CORSOrigins,
		Version:       Version,
		Log:           a.tlog.Reader(),
		LogAudit:      auditRecorder{log: a.Log, batch: a.batcher},
		LogVerifier:   a.tlog.VerifierKey(),
		Authorizer:    a.Authz,
		BreakGlass:    a.BreakGlass,
		Reviews:       a.Desk,
		Monitor:       a.monitorAPI(),
		Subscriptions: a.subs.Hub(),
		Bulk:          a.bulk,
		Attempts:      a.attempts,
		Observer:      a.metrics,
		Metrics:       a.metricsHandler(),
		Pace: httpapi.Pace{HandlerTimeout: a.Config.Timeouts.Handler.D(), MinBodyRate: a.Config.Limits.MinBodyRate,
			BodyGrace: a.Config.Timeouts.BodyGrace.D()},
		Ready: func(ctx context.Context) error {
			// Not ready while the audit log refuses to sign (rolled back,
			// rewritten or tampered with: ADR 0016).
			if err := a.tlog.Alarm(); err != nil {
				return err
			}
			_, err := a.Store.Key(ctx, keys.SystemToken)
			return err
		},
	}).Handler()
}

// authorizePages builds the SMART App Launch authorize pages
// (internal/webui/authorize), or nil without SMART or login; accounts
// (nil when unavailable) is their directory of who may approve apps.
func (a *App) authorizePages(accounts httpapi.Accounts) httpapi.Authorize {
	if a.SMART == nil || a.Login == nil {
		return nil
	}
	var users identity.Directory
	if accounts != nil {
		users = accounts.Directory()
	}
	return authorize.New(authorize.Options{SMART: a.SMART, Login: a.Login, Record: a.Record, Authorizer: a.Authz,
		Users: users, Logger: a.logger, BaseURL: a.Config.Server.BaseURL})
}

// webUI builds the web interface (internal/webui), or nil (no UI, the
// API still serves) if it cannot be built.
func (a *App) webUI(accounts httpapi.Accounts, enrolLimiter *password.AddressLimiter) http.Handler {
	sq := a.db
	var access webui.AccessLog
	if a.AuditIndex != nil { // no typed nil in the interface
		access = a.AuditIndex
	}
	var reports webui.Reports // nil: the report pages answer 503
	if r, err := privacy.NewReports(privacy.Options{Tx: sqldb.NewUnit[privacy.Tx](sq), Store: sq, Notes: a.Record, Log: a.Log}); err != nil {
		a.logger.Error("access reports unavailable", slog.String("error", err.Error()))
	} else {
		reports = r
	}
	var trail webui.Trail // nil: no staff lookup, no export
	if t, err := privacy.NewTrail(privacy.TrailOptions{Tx: sqldb.NewUnit[privacy.Tx](sq), Log: a.Log}); err != nil {
		a.logger.Error("privacy trail unavailable", slog.String("error", err.Error()))
	} else {
		trail = t
	}
	var amend webui.Amendments // nil: the correction pages answer 503
	if am, err := privacy.NewAmendments(privacy.AmendOptions{Tx: sqldb.NewUnit[privacy.AmendTx](sq), Store: sq, Notes: a.Record, Log: a.Log}); err != nil {
		a.logger.Error("correction requests unavailable", slog.String("error", err.Error()))
	} else {
		amend = am
	}
	con := a.console(sq)
	if trail != nil {
		con.Exports = trail
	}
	var reviewing webui.Reviewing // nil: no access is marked under review
	if mon, err := a.Monitor(); err != nil {
		a.logger.Error("access alerts unavailable", slog.String("error", err.Error()))
	} else {
		con.Monitor, reviewing = mon, mon
	}
	o := webui.Options{
		Login: a.Login, Record: a.Record, Users: sq.Users(), Access: access, Reports: reports, Trail: trail, Amendments: amend, Reviewing: reviewing,
		Keys: a.Keys, KeyScanner: a.Store,
		IdleTimeout: a.idleTimeout, Logger: a.logger, AuditLog: trustStatus{a.tlog}, Authz: a.Authz, BreakGlass: a.BreakGlass,
		Console: con, EnrolLimiter: enrolLimiter, BaseURL: a.Config.Server.BaseURL,
	}
	if accounts != nil { // no typed nil in the interface
		o.Enrol = accounts
	}
	ui, err := webui.New(o)
	if err != nil {
		a.logger.Error("web UI unavailable", slog.String("error", err.Error()))
		return nil
	}
	return ui.Handler()
}

// KeyLifecycle is key rotation, the KEK epoch job that makes erasures
// final (ADR 0015) and the erasure status.
func (a *App) KeyLifecycle() *lifecycle.Manager { return a.keyLife }

// processName identifies this process in leases: host, pid and a random
// suffix (a restarted process with the same pid is another holder).
func processName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])
}

// ReportAttempts records the aggregate events of the refusals not yet
// reported, now (RunAttemptReports does it every interval).
func (a *App) ReportAttempts(ctx context.Context) error { return a.attempts.Flush(ctx) }

// Close reports the refused attempts not yet reported, drains the audit
// batcher, integrates the last records into the audit log and stops the
// integrator, then closes the database.
func (a *App) Close() error {
	if a.attempts != nil {
		fctx, cancel := context.WithTimeout(context.Background(), attemptFlushTimeout)
		if err := a.attempts.Flush(fctx); err != nil {
			a.logger.Warn("refused attempts could not be reported at shutdown", slog.String("error", err.Error()))
		}
		cancel()
	}
	a.batcher.Close()
	err := a.tlog.Close()
	err = errors.Join(err, a.Store.Close(), a.stopTracing())
	if a.release != nil {
		a.release()
	}
	return err
}
