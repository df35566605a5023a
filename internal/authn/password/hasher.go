package password

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Defaults for [HasherConfig].
const (
	// DefaultMaxConcurrent is 4 KDF runs at once. With p=1 each run keeps
	// one core busy; 4 keeps both cores of the reference machine busy
	// with room for a run to finish while the next starts, and bounds
	// memory at 4 × 19 MiB = 76 MiB however many logins arrive.
	DefaultMaxConcurrent = 4
	// DefaultMaxWaiting is 64 callers queued for a slot. At ≈ 30 ms per
	// run and 2 cores a full queue drains in about a second; beyond that a
	// credential-stuffing burst is answered [ErrBusy] at once instead of
	// piling up goroutines and request timeouts.
	DefaultMaxWaiting = 64
)

// HasherConfig configures a [Hasher]. The zero value means the defaults.
type HasherConfig struct {
	// Params for new hashes and the unknown-user path; zero means
	// [DefaultParams].
	Params Params
	// MaxConcurrent is the number of KDF runs at once; zero means
	// [DefaultMaxConcurrent].
	MaxConcurrent int
	// MaxWaiting is the number of callers that may wait for a slot; zero
	// means [DefaultMaxWaiting], negative means none.
	MaxWaiting int
	// MaxMemory (KiB) is the largest m a stored hash may have; larger
	// ones are refused with [ErrUnsupported] without running the KDF on
	// them. Zero means Params.Memory, so the memory bound is exactly
	// MaxConcurrent × Params.Memory. Raise it only while migrating hashes
	// made with a larger m to a smaller one.
	MaxMemory uint32
}

// Hasher hashes and verifies passwords with a bound on the work done at
// once: at most MaxConcurrent argon2id runs, so memory stays under
// MaxConcurrent × MaxMemory KiB (76 MiB by default) whatever the number of
// concurrent logins, and at most MaxWaiting callers queue for a slot.
//
// A Hasher is safe for concurrent use. Its methods take a context because
// they may wait for a slot; they return ctx.Err() if it ends first.
type Hasher struct {
	params    Params
	maxMemory uint32
	limit     int64 // MaxConcurrent + MaxWaiting
	slots     chan struct{}
	pending   atomic.Int64 // running plus waiting
	dummy     string       // PHC string no password matches
	kdf       kdfFunc
}

// NewHasher returns a Hasher for cfg. It returns [ErrInvalidParams] for
// parameters out of bounds, naming the field.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams()
	}
	if err := cfg.Params.validate(); err != nil {
		return nil, fmt.Errorf("password hasher: HasherConfig.Params: %w", err)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxConcurrent < 0 {
		return nil, fmt.Errorf("password hasher: HasherConfig.MaxConcurrent is negative: %w", ErrInvalidParams)
	}
	switch {
	case cfg.MaxWaiting == 0:
		cfg.MaxWaiting = DefaultMaxWaiting
	case cfg.MaxWaiting < 0:
		cfg.MaxWaiting = 0
	}
	if cfg.MaxMemory == 0 {
		cfg.MaxMemory = cfg.Params.Memory
	}
	if cfg.MaxMemory < cfg.Params.Memory {
		return nil, fmt.Errorf("password hasher: HasherConfig.MaxMemory is below Params.Memory: %w", ErrInvalidParams)
	}
	// The unknown-user path verifies against this: a PHC string with the
	// configured parameters and a random salt and key. Running the KDF on
	// it costs exactly what a real verify costs; no password matches it
	// (that would need a 256-bit preimage), and it needs no KDF run here.
	var salt, key [32]byte
	if _, err := rand.Read(salt[:saltLen]); err != nil {
		return nil, fmt.Errorf("password hasher: reading salt: %w", err)
	}
	if _, err := rand.Read(key[:keyLen]); err != nil {
		return nil, fmt.Errorf("password hasher: reading dummy key: %w", err)
	}
	return &Hasher{
		params:    cfg.Params,
		maxMemory: cfg.MaxMemory,
		limit:     int64(cfg.MaxConcurrent + cfg.MaxWaiting),
		slots:     make(chan struct{}, cfg.MaxConcurrent),
		dummy:     phc{params: cfg.Params, salt: salt[:saltLen], key: key[:keyLen]}.String(),
		kdf:       argon2.IDKey,
	}, nil
}

// Params returns the parameters of new hashes.
func (h *Hasher) Params() Params { return h.params }

// Hash is [Hash] with h's parameters and concurrency limit. It returns
// [ErrBusy], ctx.Err(), or the errors of [Hash].
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	defer h.release()
	return hashWith(h.kdf, pw, h.params)
}

// Verify is [Verify] with h's concurrency limit; needsRehash compares with
// h's parameters. A stored hash that is malformed, unsupported or above
// MaxMemory returns ok == false and [ErrMalformed] or [ErrUnsupported]
// after the same KDF work as a wrong password, so even corrupt rows do
// not answer faster. It also returns [ErrBusy] or ctx.Err() (without KDF
// work, for any user alike).
func (h *Hasher) Verify(ctx context.Context, pw, encoded string) (ok, needsRehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, fmt.Errorf("verifying password: %w", err)
	}
	defer h.release()
	return h.verify(pw, encoded)
}

// DummyVerify is the unknown-user path (STYLE rule 25): it does what
// [Hasher.Verify] does, through the same code, against a fixed PHC string
// made at [NewHasher] with h's parameters that no password matches, so
// its cost and result equal a wrong password's for an account hashed
// with h's parameters. ok is always false; err is [ErrBusy] or ctx.Err()
// exactly when Verify would return them. Pass the password the client
// sent so that its length is handled as in Verify.
func (h *Hasher) DummyVerify(ctx context.Context, pw string) (ok bool, err error) {
	ok, _, err = h.Verify(ctx, pw, h.dummy)
	return ok, err
}

func (h *Hasher) verify(pw, encoded string) (ok, needsRehash bool, err error) {
	p, err := parsePHC(encoded)
	if err == nil && p.params.Memory > h.maxMemory {
		err = fmt.Errorf("%w: m=%d is above the configured maximum %d", ErrUnsupported, p.params.Memory, h.maxMemory)
	}
	if err != nil {
		d, derr := parsePHC(h.dummy)
		if derr != nil {
			panic("password: dummy hash does not parse: " + derr.Error())
		}
		verifyParsed(h.kdf, h.params, pw, d)
		return false, false, fmt.Errorf("verifying password: %w", err)
	}
	ok, needsRehash = verifyParsed(h.kdf, h.params, pw, p)
	return ok, needsRehash, nil
}

// acquire takes a KDF slot, waiting while fewer than MaxWaiting others
// wait. Callers must call release after a nil return.
func (h *Hasher) acquire(ctx context.Context) error {
	if h.pending.Add(1) > h.limit {
		h.pending.Add(-1)
		return ErrBusy
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		h.pending.Add(-1)
		return ctx.Err()
	}
}

func (h *Hasher) release() {
	<-h.slots
	h.pending.Add(-1)
}
