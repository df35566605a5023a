package subscription

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// Defaults of Options.
const (
	DefaultMaxAttempts = 6
	DefaultBaseBackoff = 2 * time.Second
	DefaultMaxBackoff  = 10 * time.Minute
	DefaultPoll        = time.Second
	DefaultLease       = time.Minute
	DefaultWorkers     = 4
	// DefaultWebsocketTTL is how long a websocket subscription's
	// notification waits for a bound client before it is dropped (the
	// R4 websocket channel only pings clients connected now).
	DefaultWebsocketTTL = 10 * time.Minute
)

// claimBatch is how many notifications one round leases.
const claimBatch = 32

// Record is what the service needs of the record: searches on a
// subscription owner's authority (*record.Service).
type Record interface {
	Search(ctx context.Context, c record.Caller, typ string, vals url.Values, opt record.SearchOptions) (record.Page, error)
}

// Config is the record's privileged access to Subscription resources
// (*record.Subscriptions).
type Config interface {
	Current(ctx context.Context, id string) (record.Stored, error)
	SetStatus(ctx context.Context, agent audit.Agent, id string, version int64, status, errText string) (int64, error)
}

// Guards binds a principal to its authorization (*authz.Authorizer's For).
type Guards func(p authn.Principal) record.Guard

// Recorder makes a sealed audit record durable (*audit.Batcher).
type Recorder interface {
	Record(ctx context.Context, rec storage.AuditRecord) error
}

// Searchable checks a search's parameters (*search.Registry, through
// record.Service.Registry): criteria are refused at write time when
// they would not evaluate.
type Searchable interface {
	CheckQuery(typ string, vals url.Values) error
}

// Options configure a [Service]. Every field without a default is required.
type Options struct {
	Store   Store
	Record  Record
	Config  Config
	Guards  Guards
	Users   Users
	Tokens  Tokens
	Log     *audit.Log
	Audit   Recorder
	Source  export.Source  // the integrated audit log (the change feed)
	Cursors export.Cursors // its durable cursor ("subscriptions")
	// Integrate, if set, integrates pending audit records before a
	// round reads the feed (a wake-up then sees the write that woke it).
	Integrate func(context.Context) (int64, error)
	// Criteria, if set, checks criteria's parameters at write time.
	Criteria Searchable

	Endpoints EndpointPolicy
	// TLS, if set, is the rest-hook client's TLS configuration (test
	// roots); the system roots otherwise.
	TLS *tls.Config
	// Client, if set, replaces the rest-hook client (it must apply
	// Endpoints itself); default Endpoints.NewClient(TLS).
	Client *http.Client

	Holder  string // this process in leases (unique per process)
	BaseURL string // the FHIR base URL, e.g. https://host/fhir

	MaxAttempts  int           // failed attempts of one notification before the subscription errs; DefaultMaxAttempts
	BaseBackoff  time.Duration // first retry delay, doubling; DefaultBaseBackoff
	MaxBackoff   time.Duration // DefaultMaxBackoff
	Poll         time.Duration // round interval without a wake-up; DefaultPoll
	Lease        time.Duration // a claim's lease; DefaultLease (> DeliveryTimeout)
	Workers      int           // deliveries in parallel; DefaultWorkers
	WebsocketTTL time.Duration // DefaultWebsocketTTL

	Now    func() time.Time // time.Now
	Jitter func() float64   // uniform in [0,1): rand.Float64
	Logger *slog.Logger
}

// Service delivers R4 Subscriptions. It is safe for concurrent use; Run
// is its one loop.
type Service struct {
	o      Options
	res    resolver
	client *http.Client
	hub    *Hub
	wake   chan struct{}
	x      *export.Exporter
	mu     sync.Mutex // one round at a time in this process
}

// New validates o and returns the service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Record == nil || o.Config == nil || o.Guards == nil || o.Users == nil || o.Tokens == nil ||
		o.Log == nil || o.Audit == nil || o.Source == nil || o.Cursors == nil || o.Holder == "" {
		return nil, errors.New("subscription: Store, Record, Config, Guards, Users, Tokens, Log, Audit, Source, Cursors and Holder are required")
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = DefaultBaseBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Lease <= DeliveryTimeout {
		// A delivery that outlives its claim's lease is claimed and sent
		// again by another process of the fleet.
		return nil, fmt.Errorf("subscription: Lease (%v) must exceed DeliveryTimeout (%v)", o.Lease, DeliveryTimeout)
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.WebsocketTTL <= 0 {
		o.WebsocketTTL = DefaultWebsocketTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{o: o, res: resolver{users: o.Users, tokens: o.Tokens}, wake: make(chan struct{}, 1)}
	s.client = o.Client
	if s.client == nil {
		s.client = o.Endpoints.NewClient(o.TLS)
	}
	s.hub = newHub(s)
	x, err := export.New(export.Options{Sink: feed{s: s}, Source: o.Source, Cursors: o.Cursors, Batch: 500, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	s.x = x
	return s, nil
}

// Check is the record's write rule for Subscription resources
// (record.Service.SetResourceCheck): the criteria parse and name known
// search parameters, the channel is supported, a rest-hook endpoint is
// one the server will call.
func (s *Service) Check(res fhir.Resource) error {
	b, err := res.Marshal()
	if err != nil {
		return specError("the Subscription could not be read")
	}
	sp, err := ParseSpec(b)
	if err != nil {
		return err
	}
	if s.o.Criteria != nil {
		if err := s.o.Criteria.CheckQuery(sp.Criteria.Type, sp.Criteria.Query); err != nil {
			return criteriaError("criteria: " + err.Error())
		}
	}
	if sp.Endpoint != nil {
		if err := s.o.Endpoints.CheckURL(sp.Endpoint); err != nil {
			return err
		}
	}
	return nil
}

// Wake asks for a round now (the record's write hook): it never blocks.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run follows the change feed and delivers until ctx ends ("phivault
// serve" runs it). A nil Service returns at once.
func (s *Service) Run(ctx context.Context) {
	if s == nil {
		return
	}
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	defer s.hub.closeAll()
	for {
		if err := s.Round(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.WarnContext(ctx, "subscription round failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Round brings the notifications owed up to the feed, then delivers
// what is due: one pass.
func (s *Service) Round(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.follow(ctx); err != nil {
		return err
	}
	if _, err := s.o.Store.DropStale(ctx, ChannelWebsocket, s.o.Now().Add(-s.o.WebsocketTTL)); err != nil {
		return err
	}
	return s.deliverDue(ctx)
}

// follow reads the feed to its end.
func (s *Service) follow(ctx context.Context) error {
	if s.o.Integrate != nil {
		if _, err := s.o.Integrate(ctx); err != nil {
			return fmt.Errorf("integrating the audit log: %w", err)
		}
	}
	for {
		_, err := s.x.Drain(ctx, nil)
		if !errors.Is(err, export.ErrMoved) {
			return err
		}
	}
}

// Hub returns the websocket connections' hub (its Handler serves them).
func (s *Service) Hub() *Hub { return s.hub }

// backoff is the delay before attempt n+1 (n ≥ 1 failed): exponential
// from BaseBackoff, capped, with jitter in [d/2, d) so that receivers
// that failed together are not retried together.
func (s *Service) backoff(n int) time.Duration {
	d := s.o.BaseBackoff
	for i := 1; i < n && d < s.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.o.MaxBackoff)
	return d/2 + time.Duration(s.o.Jitter()*float64(d/2))
}
