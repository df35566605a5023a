package tlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Options configures [Open].
type Options struct {
	// Store holds the log: records, bundles, tiles and checkpoints.
	Store storage.LogStore
	// Signer signs checkpoints; its name is the log's origin.
	Signer *keys.LogSigner
	// Origin is the log's name (audit.log_name).
	Origin string
	// Log opens audit records and seals bundles and events.
	Log *audit.Log
	// CheckpointFile keeps the last signed checkpoint outside the
	// database (audit.checkpoint_file); "" for none.
	CheckpointFile string
	// WitnessCheckpoints are the witnesses' co-signed checkpoints
	// (audit.witness_checkpoints), read only.
	WitnessCheckpoints []string
	// Verifications records full verifications; nil records none.
	Verifications Verifications
	// Alerts is the unit of work of an accepted checkpoint.
	Alerts Unit
	// Logger receives integration failures and verifications.
	Logger *slog.Logger
}

// Verifications stores the outcomes of full verifications.
type Verifications interface {
	RecordVerification(ctx context.Context, v storage.Verification) error
	// LastVerification returns the latest verification (the latest
	// successful one if okOnly), or storage.ErrNotFound.
	LastVerification(ctx context.Context, okOnly bool) (storage.Verification, error)
}

// Log is the running transparency log of one process.
type Log struct {
	o      Options
	store  storage.LogStore
	integ  *merkle.Integrator
	watch  *merkle.Watch // this process's records until they are integrated
	reader *merkle.Reader
	logger *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// finalIntegrationTimeout bounds the last integration Close runs, so a
// stuck database cannot hang shutdown.
const finalIntegrationTimeout = 30 * time.Second

// Open builds the log, integrates what is pending and starts the
// integrator and watch goroutines, which Close stops.
func Open(ctx context.Context, o Options) (*Log, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{o: o, store: o.Store, logger: o.Logger}
	v, err := merkle.NewVerifier(o.Signer.VerifierKey())
	if err != nil {
		return nil, fmt.Errorf("opening the audit log signing key: %w", err)
	}
	anchor, witnesses := l.anchors()
	l.integ, err = merkle.NewIntegrator(merkle.IntegratorOptions{
		Store: l.store, Signer: o.Signer, Verifier: v, Origin: o.Origin, Opener: o.Log, Logger: o.Logger,
		Anchor: anchor, Witnesses: witnesses,
	})
	if err != nil {
		return nil, err
	}
	l.reader = merkle.NewReader(l.store, o.Log)
	// Integrate now, so /log/checkpoint answers from the first request
	// (a new log gets the empty tree's checkpoint). A failure is logged,
	// not fatal: a tampered log must not keep the server down; "phivault
	// audit verify" names the damage.
	if _, err := l.integ.IntegrateAll(ctx); err != nil {
		l.logger.Error("audit log integration failed at start", slog.String("err", err.Error()))
	}
	if l.watch, err = merkle.NewWatch(ctx, l.store, o.Log, o.Logger, 0); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		_ = l.integ.Run(rctx)
	}()
	go func() {
		defer l.wg.Done()
		_ = l.watch.Run(rctx)
	}()
	return l, nil
}

// Close stops the integrator goroutine and integrates what is left, so
// every event recorded by this process is in a signed checkpoint.
func (l *Log) Close() error {
	l.cancel()
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), finalIntegrationTimeout)
	defer cancel()
	_, err := l.integ.IntegrateAll(ctx)
	return err
}

// VerifierKey returns the log's public note verifier key.
func (l *Log) VerifierKey() string { return l.o.Signer.VerifierKey() }

// Origin returns the log's name.
func (l *Log) Origin() string { return l.o.Origin }

// Reader serves the published log (checkpoints, tiles, proofs).
func (l *Log) Reader() *merkle.Reader { return l.reader }

// Source is the stored log, for verifiers that read it whole.
func (l *Log) Source() storage.LogStore { return l.store }

// Integrate integrates every pending audit record now and returns the
// tree size.
func (l *Log) Integrate(ctx context.Context) (int64, error) { return l.integ.IntegrateAll(ctx) }

// Wake asks the integrator to run soon.
func (l *Log) Wake() { l.integ.Wake() }

// Alarm returns why the integrator refuses to extend the stored log
// (tampered, rolled back or rewritten), or that records this process
// appended were deleted before integration (merkle.ErrVanished), or nil.
func (l *Log) Alarm() error {
	if err := l.integ.Alarm(); err != nil {
		return err
	}
	return l.watch.Alarm()
}

// CheckAppended checks now (the watch does every few seconds) that the
// audit records this process made durable are pending or integrated: an
// error wrapping merkle.ErrVanished names how many were deleted before
// integration (see merkle.Watch).
func (l *Log) CheckAppended(ctx context.Context) error { return l.watch.Check(ctx) }

// Events opens every stored audit event, integrated and pending
// (audit.Log.Events): for tests and tools, it reads the whole log.
func (l *Log) Events(ctx context.Context) ([]audit.Event, error) {
	return l.o.Log.Events(ctx, l.store)
}
