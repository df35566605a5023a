package bulk

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// Defaults of [Options].
const (
	// DefaultExpiry is how long a finished export's files are kept: the
	// IG expects them for "a reasonable time"; a day lets a client that
	// failed overnight retry, and bounds how long a disclosure sits on
	// the server.
	DefaultExpiry = 24 * time.Hour
	// DefaultMaxJobs is how many exports one client may have queued or
	// running at once (more: 429).
	DefaultMaxJobs = 2
	// DefaultFileBytes is the size at which an output file is closed and
	// another begun (each file is sealed and held in memory whole once).
	DefaultFileBytes = 8 << 20
	// DefaultLease is how long a claim on a running job lasts without
	// renewal: a process that dies leaves its job to another after it.
	DefaultLease = 2 * time.Minute
	// DefaultPoll is how often idle processes look for queued jobs.
	DefaultPoll = time.Second
	// DefaultPageSize is the _count of the searches an export runs.
	DefaultPageSize = 200
	// MaxAttempts is how many runs a job gets: a job interrupted (its
	// process died) more often than this is failed, never left stuck.
	MaxAttempts = 3
	// maxJobAge expires a job that never finished (with its key).
	maxJobAge = 7 * 24 * time.Hour
)

// Searcher runs the searches of an export: record.Service, through the
// same search engine, narrowing and per-match decisions as a search.
type Searcher interface {
	Search(ctx context.Context, c record.Caller, typ string, vals url.Values, opt record.SearchOptions) (record.Page, error)
	CompartmentSearch(ctx context.Context, c record.Caller, id, typ string, vals url.Values, opt record.SearchOptions) (record.Page, error)
	Read(ctx context.Context, c record.Caller, typ, id string) (record.Stored, error)
	// History is a history Bundle (type level with _since: the
	// deletions of a _since export).
	History(ctx context.Context, c record.Caller, typ, id string, vals url.Values, opt record.SearchOptions) ([]byte, error)
}

// Keys makes and opens job keys (keys.Keyring).
type Keys interface {
	NewExportKey(job string) (*keys.ExportKey, []byte, error)
	ExportKey(job string, wrapped []byte) (*keys.ExportKey, error)
}

// Client is what an export needs of a SMART backend client's
// registration.
type Client struct {
	Purpose string // registered purpose of use; "" may not export
	Usable  bool   // enabled and approved
}

// Clients looks up a backend client's registration.
type Clients func(ctx context.Context, id string) (Client, error)

// Sealer seals audit events (audit.Log).
type Sealer interface {
	Seal(audit.Event) (storage.AuditRecord, error)
}

// Recorder makes a sealed event durable (audit.Batcher).
type Recorder interface {
	Record(ctx context.Context, rec storage.AuditRecord) error
}

// Options configures a Service. Store, Record, Keys, Guards, Clients,
// Log, Audit, InCompartment, Holder and BaseURL are required; zero
// values elsewhere mean the defaults.
type Options struct {
	Store   Store
	Record  Searcher
	Keys    Keys
	Guards  func(authn.Principal) record.Guard
	Clients Clients
	Log     Sealer
	Audit   Recorder
	// CheckQuery validates a _typeFilter query at kick-off (the search
	// registry); nil: checked only when the export runs.
	CheckQuery func(typ string, vals url.Values) error
	// InCompartment reports whether a type is in the R4 Patient
	// compartment (Patient and Group level exports).
	InCompartment func(typ string) bool
	// Types lists the types a system-level export without _type covers.
	Types        []string
	Transformers Transformers
	Holder       string // this process, for job claims
	BaseURL      string // the FHIR base, e.g. https://host/fhir
	Expiry       time.Duration
	MaxJobs      int
	FileBytes    int
	Lease        time.Duration
	Poll         time.Duration
	PageSize     int
	Now          func() time.Time
	Logger       *slog.Logger
}

// Service runs FHIR Bulk Data exports. It is safe for concurrent use.
type Service struct {
	o    Options
	wake chan struct{}
}

// New validates o and returns a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Record == nil || o.Keys == nil || o.Guards == nil || o.Clients == nil || o.Log == nil ||
		o.Audit == nil || o.InCompartment == nil || o.Holder == "" || o.BaseURL == "" {
		return nil, errors.New("bulk: Options.Store, Record, Keys, Guards, Clients, Log, Audit, InCompartment, Holder and BaseURL are required")
	}
	if o.Expiry <= 0 {
		o.Expiry = DefaultExpiry
	}
	if o.MaxJobs <= 0 {
		o.MaxJobs = DefaultMaxJobs
	}
	if o.FileBytes <= 0 {
		o.FileBytes = DefaultFileBytes
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, wake: make(chan struct{}, 1)}, nil
}

// Caller is who makes a bulk request: the authenticated principal, its
// audit agent and the request id.
type Caller struct {
	Principal authn.Principal
	Agent     audit.Agent
	RequestID string
}

// sealed is what a job's params hold (sealed under its key): the
// request and what the kick-off fixed about the client.
type sealed struct {
	Request Request  `json:"request"`
	Scopes  string   `json:"scopes"`
	Purpose string   `json:"purpose"`
	Types   []string `json:"types"` // resolved at kick-off, in order
}

// ScopeError is a _type the token's scopes do not allow (strict
// handling): 403.
type ScopeError struct{}

func (ScopeError) Error() string {
	return "bulk: _type names a resource type the access token's scopes do not allow"
}

// Kickoff starts an export for c: validates it against the client's
// registration and scopes, seals it under a new job key and queues it.
// It returns the job id (the status URL's last segment). Errors:
// ErrForbidden, *ParamError, ScopeError, ErrNotFound (a Group that does
// not exist or that the client may not read), ErrTooManyJobs,
// ErrUnavailable.
func (s *Service) Kickoff(ctx context.Context, c Caller, req Request, lenient bool) (string, error) {
	p := c.Principal
	if p.Kind != authn.KindSMARTClient || p.Scopes == nil {
		s.record(ctx, c, audit.ActionBulkExport, audit.OutcomeDenied, "", []string{PolicyBackendOnly})
		return "", fmt.Errorf("%w: not a SMART backend client", ErrForbidden)
	}
	cl, err := s.o.Clients(ctx, p.ID)
	if err != nil || !cl.Usable || cl.Purpose == "" {
		s.record(ctx, c, audit.ActionBulkExport, audit.OutcomeDenied, "", []string{PolicyNoPurpose})
		if err != nil && errors.Is(err, storage.ErrUnavailable) {
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return "", fmt.Errorf("%w: the client has no registered purpose of use", ErrForbidden)
	}
	if cl.Purpose == PurposeResearch && req.Deidentify == "" {
		// Safe Harbor holds only for a recipient without actual knowledge
		// that could re-identify (§164.514(b)(2)(ii)): a client that could
		// also export identified data links the two sets by their values.
		s.record(ctx, c, audit.ActionBulkExport, audit.OutcomeDenied, "", []string{PolicyResearchDeidentified})
		return "", fmt.Errorf("%w: a research client (purpose HRESCH) receives de-identified data only: add _deidentify=safe-harbor", ErrForbidden)
	}
	if req.Deidentify != "" {
		if s.o.Transformers == nil {
			return "", notSupported("_deidentify is not available on this server")
		}
		if _, ok := s.o.Transformers(req.Deidentify); !ok {
			return "", notSupported("_deidentify is not available on this server")
		}
	}
	if s.o.CheckQuery != nil {
		for typ, fs := range req.Filters {
			for _, f := range fs {
				vals, _ := url.ParseQuery(f)
				if err := s.o.CheckQuery(typ, vals); err != nil {
					return "", invalid("_typeFilter: " + err.Error())
				}
			}
		}
	}
	types, err := s.resolveTypes(req, *p.Scopes, lenient)
	if err != nil {
		return "", err
	}
	if req.Level == LevelGroup {
		// The Group must exist and be readable by the client (an ordinary
		// read, audited as one): otherwise 404, as for a read.
		if _, err := s.o.Record.Read(ctx, s.readCaller(c), "Group", req.Group); err != nil {
			if errors.Is(err, record.ErrUnavailable) {
				return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return "", fmt.Errorf("%w: group", ErrNotFound)
		}
	}
	id := rand.Text()
	key, wrapped, err := s.o.Keys.NewExportKey(id)
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(sealed{Request: req, Scopes: p.Scopes.String(), Purpose: cl.Purpose, Types: types})
	if err != nil {
		return "", err
	}
	params, err := key.Seal(0, pb)
	if err != nil {
		return "", err
	}
	now := s.o.Now().UTC()
	j := Job{ID: id, Client: p.ID, State: StateQueued, Params: params, Key: wrapped, Created: now, TxTime: now,
		Expires: now.Add(maxJobAge), Progress: "queued"}
	if err := s.o.Store.CreateJob(ctx, j, s.o.MaxJobs); err != nil {
		if errors.Is(err, ErrTooManyJobs) {
			s.record(ctx, c, audit.ActionBulkExport, audit.OutcomeDenied, "", []string{PolicyTooMany})
			return "", err
		}
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ev := s.event(c, audit.ActionBulkExport, audit.OutcomeSuccess, id, []string{PolicyKickoff})
	ev.Purpose = cl.Purpose
	ev.Query = queryNames(req, types)
	if err := s.append(ctx, ev); err != nil {
		_ = s.o.Store.DeleteJob(context.WithoutCancel(ctx), id)
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.Wake()
	return id, nil
}

// Policies recorded on the audit events of bulk requests.
const (
	PolicyKickoff     = "bulk-export"
	PolicyBackendOnly = "bulk-export-backend-only"
	PolicyNoPurpose   = "bulk-export-needs-purpose"
	PolicyTooMany     = "bulk-export-concurrency"
	PolicyOwnJob      = "bulk-export-own-job"

	// PolicyResearchDeidentified refuses an identified export to a
	// research client.
	PolicyResearchDeidentified = "bulk-export-research-deidentified"
)

// PurposeResearch is the v3 PurposeOfUse of research (HRESCH): a client
// registered for it receives de-identified exports only.
const PurposeResearch = "HRESCH"

// resolveTypes is the ordered list of types the export will search:
// _type (or every exportable type of the level) narrowed to the
// scopes. A _type outside the scopes is refused (ScopeError) or, under
// lenient handling, left out.
func (s *Service) resolveTypes(req Request, sc scope.Set, lenient bool) ([]string, error) {
	var cand []string
	switch {
	case len(req.Types) > 0:
		cand = slices.Clone(req.Types)
	default:
		cand = slices.Clone(s.o.Types)
	}
	var out []string
	for _, t := range cand {
		if req.Level != LevelSystem && !s.o.InCompartment(t) {
			if len(req.Types) > 0 && !lenient {
				return nil, invalid("_type names a resource type outside the Patient compartment, which a Patient or Group export cannot hold")
			}
			continue
		}
		if !sc.Allows(scope.System, t, scope.Read) {
			if len(req.Types) > 0 && !lenient {
				return nil, ScopeError{}
			}
			continue
		}
		out = append(out, t)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, ScopeError{}
	}
	return out, nil
}

func queryNames(req Request, types []string) string {
	var ps []string
	ps = append(ps, "level="+string(req.Level), "_type="+strings.Join(types, ","))
	if !req.Since.IsZero() {
		ps = append(ps, "_since")
	}
	if len(req.Filters) > 0 {
		ps = append(ps, "_typeFilter")
	}
	if len(req.Patients) > 0 {
		ps = append(ps, "patient")
	}
	if req.Deidentify != "" {
		ps = append(ps, "_deidentify="+req.Deidentify)
	}
	return strings.Join(ps, "&")
}

// readCaller is c as an ordinary record caller (the Group read).
func (s *Service) readCaller(c Caller) record.Caller {
	return record.Caller{Agent: c.Agent, Purpose: c.Principal.Purpose, RequestID: c.RequestID, Guard: s.o.Guards(c.Principal)}
}

// own returns job id if c's client started it: any other caller (another
// client, a user, an API token) gets ErrNotFound, audited as denied.
func (s *Service) own(ctx context.Context, c Caller, a audit.Action, id string) (Job, error) {
	if !validJobID(id) {
		return Job{}, ErrNotFound
	}
	j, err := s.o.Store.Job(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			s.record(ctx, c, a, audit.OutcomeDenied, "", []string{PolicyOwnJob})
			return Job{}, ErrNotFound
		}
		return Job{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if c.Principal.Kind != authn.KindSMARTClient || c.Principal.ID != j.Client {
		s.record(ctx, c, a, audit.OutcomeDenied, "", []string{PolicyOwnJob})
		return Job{}, ErrNotFound
	}
	return j, nil
}

func validJobID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Status is a job as its client sees it.
type Status struct {
	State    State
	Progress string
	Error    string    // failed: why (no PHI)
	Expires  time.Time // done or failed: when files and key are destroyed
	Manifest []byte    // done: the IG's JSON manifest
}

// Status returns job id's status for c (audited). Errors: ErrNotFound,
// ErrUnavailable.
func (s *Service) Status(ctx context.Context, c Caller, id string) (Status, error) {
	j, err := s.own(ctx, c, audit.ActionExportStatus, id)
	if err != nil {
		return Status{}, err
	}
	st := Status{State: j.State, Progress: j.Progress, Error: j.Error, Expires: j.Expires}
	if j.State == StateDone {
		files, err := s.o.Store.Files(ctx, id)
		if err != nil {
			return Status{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		key, err := s.o.Keys.ExportKey(id, j.Key)
		if err != nil {
			return Status{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		sd, err := openParams(key, j.Params)
		if err != nil {
			return Status{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if st.Manifest, err = s.manifest(j, sd.Request, files); err != nil {
			return Status{}, err
		}
	}
	if err := s.append(ctx, s.event(c, audit.ActionExportStatus, audit.OutcomeSuccess, id, []string{PolicyOwnJob})); err != nil {
		return Status{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return st, nil
}

// File returns file n of job id, decrypted, for c (audited). Errors:
// ErrNotFound (also for a job not done yet), ErrUnavailable.
func (s *Service) File(ctx context.Context, c Caller, id string, n int) ([]byte, File, error) {
	j, err := s.own(ctx, c, audit.ActionExportDownload, id)
	if err != nil {
		return nil, File{}, err
	}
	if j.State != StateDone || n < 1 {
		return nil, File{}, ErrNotFound
	}
	files, err := s.o.Store.Files(ctx, id)
	if err != nil {
		return nil, File{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	i := slices.IndexFunc(files, func(f File) bool { return f.N == n })
	if i < 0 {
		return nil, File{}, ErrNotFound
	}
	ct, err := s.o.Store.FileData(ctx, id, n)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, File{}, ErrNotFound
		}
		return nil, File{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	key, err := s.o.Keys.ExportKey(id, j.Key)
	if err != nil {
		return nil, File{}, fmt.Errorf("opening export key: %w", err)
	}
	pt, err := key.Open(n, ct)
	if err != nil {
		return nil, File{}, fmt.Errorf("opening export file: %w", err)
	}
	ev := s.event(c, audit.ActionExportDownload, audit.OutcomeSuccess, id, []string{PolicyOwnJob})
	ev.Entities = []string{"Job/" + id + "/file/" + fmt.Sprint(n)}
	if err := s.append(ctx, ev); err != nil {
		return nil, File{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return pt, files[i], nil
}

// Delete deletes job id for c: its files and its key are destroyed at
// once (a running export stops at its next write). Audited. Errors:
// ErrNotFound, ErrUnavailable.
func (s *Service) Delete(ctx context.Context, c Caller, id string) error {
	if _, err := s.own(ctx, c, audit.ActionExportDelete, id); err != nil {
		return err
	}
	if err := s.o.Store.DeleteJob(ctx, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := s.append(ctx, s.event(c, audit.ActionExportDelete, audit.OutcomeSuccess, id, []string{PolicyOwnJob})); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Sweep destroys the jobs whose expiry is before now (files and key):
// the crypto-shredding of expired exports. It returns how many it
// deleted. Run calls it with the current time.
func (s *Service) Sweep(ctx context.Context, now time.Time) (int, error) {
	ids, err := s.o.Store.Expired(ctx, now, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if err := s.o.Store.DeleteJob(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, err
		}
		n++
		ev := audit.Event{Time: s.o.Now(), Action: audit.ActionExportDelete, Outcome: audit.OutcomeSuccess,
			Agent: audit.Agent{User: "system", Client: "bulk-expiry"}, Policies: []string{"bulk-export-expiry"}}
		ev.Touch("Job/" + id)
		if err := s.append(ctx, ev); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *Service) event(c Caller, a audit.Action, o audit.Outcome, job string, policies []string) audit.Event {
	ev := audit.Event{Time: s.o.Now(), Action: a, Outcome: o, Agent: c.Agent, Purpose: c.Principal.Purpose,
		RequestID: c.RequestID, Policies: policies}
	if job != "" {
		ev.Touch("Job/" + job)
	}
	return ev
}

// record appends a denial; a failure is logged (the request is refused
// anyway).
func (s *Service) record(ctx context.Context, c Caller, a audit.Action, o audit.Outcome, job string, policies []string) {
	if err := s.append(ctx, s.event(c, a, o, job, policies)); err != nil {
		s.o.Logger.ErrorContext(ctx, "recording a bulk export denial failed", slog.String("error", err.Error()))
	}
}

func (s *Service) append(ctx context.Context, ev audit.Event) error {
	rec, err := s.o.Log.Seal(ev)
	if err != nil {
		return err
	}
	return s.o.Audit.Record(ctx, rec)
}

func openParams(key *keys.ExportKey, params []byte) (sealed, error) {
	pb, err := key.Open(0, params)
	if err != nil {
		return sealed{}, fmt.Errorf("opening export parameters: %w", err)
	}
	var sd sealed
	if err := json.Unmarshal(pb, &sd); err != nil {
		return sealed{}, fmt.Errorf("decoding export parameters: %w", err)
	}
	return sd, nil
}

// Wake tells the runner a job was queued.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
