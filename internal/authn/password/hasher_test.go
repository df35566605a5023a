package password

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// kdfCall records one KDF run.
type kdfCall struct {
	params Params
	keyLen uint32
}

// recordingKDF wraps argon2.IDKey and records its calls.
type recordingKDF struct {
	mu    sync.Mutex
	calls []kdfCall
}

func (r *recordingKDF) kdf(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	r.mu.Lock()
	r.calls = append(r.calls, kdfCall{Params{Memory: m, Time: t, Threads: p}, n})
	r.mu.Unlock()
	return argon2.IDKey(pw, salt, t, m, p, n)
}

func (r *recordingKDF) take() []kdfCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func newTestHasher(t *testing.T, cfg HasherConfig) (*Hasher, *recordingKDF) {
	t.Helper()
	if cfg.Params == (Params{}) {
		cfg.Params = fastParams
	}
	h, err := NewHasher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingKDF{}
	h.kdf = rec.kdf
	return h, rec
}

// TestUnknownUserSameWork checks the unknown-user path does the same work
// as a wrong password: one KDF run with the same parameters and output
// length, the same result and the same (nil) error.
func TestUnknownUserSameWork(t *testing.T) {
	h, rec := newTestHasher(t, HasherConfig{})
	ctx := t.Context()
	stored, err := h.Hash(ctx, "the real password, long")
	if err != nil {
		t.Fatal(err)
	}
	rec.take()

	tests := []struct {
		name string
		run  func() (bool, error)
	}{
		{"wrong password", func() (bool, error) {
			ok, _, err := h.Verify(ctx, "a wrong guess here", stored)
			return ok, err
		}},
		{"unknown user", func() (bool, error) { return h.DummyVerify(ctx, "a wrong guess here") }},
		{"unknown user, real password", func() (bool, error) { return h.DummyVerify(ctx, "the real password, long") }},
		{"unknown user, over-long password", func() (bool, error) { return h.DummyVerify(ctx, string(make([]byte, 10_000))) }},
	}
	want := []kdfCall{{fastParams, keyLen}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := tt.run()
			if ok || err != nil {
				t.Fatalf("= %v, %v; want false, nil", ok, err)
			}
			if got := rec.take(); len(got) != 1 || got[0] != want[0] {
				t.Fatalf("KDF calls = %+v; want %+v", got, want)
			}
		})
	}
}

func TestHasherVerify(t *testing.T) {
	h, rec := newTestHasher(t, HasherConfig{})
	ctx := t.Context()
	stored, err := h.Hash(ctx, "the real password, long")
	if err != nil {
		t.Fatal(err)
	}
	other, err := Hash("the real password, long", Params{Memory: 128, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	big, err := Hash("the real password, long", Params{Memory: 512, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	rec.take()
	tests := []struct {
		name       string
		pw, stored string
		ok, rehash bool
		err        error
		kdf        Params // parameters the KDF must have run with
	}{
		{"right", "the real password, long", stored, true, false, nil, fastParams},
		{"wrong", "the real password, lonG", stored, false, false, nil, fastParams},
		{"older params", "the real password, long", other, true, true, nil, Params{Memory: 128, Time: 1, Threads: 1}},
		// A corrupt row costs what a wrong password costs.
		{"malformed", "the real password, long", "$argon2id$v=19$m=256", false, false, ErrMalformed, fastParams},
		{"bcrypt", "the real password, long", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", false, false, ErrUnsupported, fastParams},
		// m above MaxMemory is not run: the memory bound holds.
		{"above MaxMemory", "the real password, long", big, false, false, ErrUnsupported, fastParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tt.pw, tt.stored)
			if ok != tt.ok || rehash != tt.rehash || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v, %v", ok, rehash, err, tt.ok, tt.rehash, tt.err)
			}
			if got := rec.take(); len(got) != 1 || got[0].params != tt.kdf {
				t.Fatalf("KDF calls = %+v; want one with %+v", got, tt.kdf)
			}
		})
	}
}

func TestNewHasherConfig(t *testing.T) {
	h, err := NewHasher(HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Params() != DefaultParams() || cap(h.slots) != DefaultMaxConcurrent || h.limit != DefaultMaxConcurrent+DefaultMaxWaiting || h.maxMemory != DefaultMemory {
		t.Fatalf("zero config: params %+v, slots %d, limit %d, maxMemory %d", h.Params(), cap(h.slots), h.limit, h.maxMemory)
	}
	for name, cfg := range map[string]HasherConfig{
		"bad params":           {Params: Params{Memory: 256, Time: 99, Threads: 1}},
		"negative concurrency": {MaxConcurrent: -1},
		"MaxMemory below m":    {Params: fastParams, MaxMemory: 128},
	} {
		if _, err := NewHasher(cfg); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: err = %v; want ErrInvalidParams", name, err)
		}
	}
}

// TestHasherBoundsConcurrency: however many callers arrive, at most
// MaxConcurrent KDF runs happen at once (the memory bound), at most
// MaxWaiting wait, and the rest get ErrBusy at once.
func TestHasherBoundsConcurrency(t *testing.T) {
	const limit, waiting, callers = 2, 3, 50
	h, err := NewHasher(HasherConfig{Params: fastParams, MaxConcurrent: limit, MaxWaiting: waiting})
	if err != nil {
		t.Fatal(err)
	}
	var running, peak atomic.Int32
	release := make(chan struct{})
	entered := make(chan struct{}, callers)
	h.kdf = func(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
		r := running.Add(1)
		for {
			old := peak.Load()
			if r <= old || peak.CompareAndSwap(old, r) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		running.Add(-1)
		return make([]byte, n)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	var busy, done atomic.Int32
	for range callers {
		wg.Go(func() {
			_, err := h.DummyVerify(ctx, "a guess from a botnet")
			switch {
			case errors.Is(err, ErrBusy):
				busy.Add(1)
			case err == nil:
				done.Add(1)
			default:
				t.Errorf("DummyVerify: %v", err)
			}
		})
	}
	// Wait until limit runs are in the KDF and everyone else has been
	// either queued or refused.
	for range limit {
		<-entered
	}
	deadline := time.Now().Add(10 * time.Second)
	for busy.Load() != callers-limit-waiting && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if got := peak.Load(); got > limit {
		t.Errorf("peak concurrent KDF runs = %d; want ≤ %d", got, limit)
	}
	if busy.Load() != callers-limit-waiting || done.Load() != limit+waiting {
		t.Errorf("busy %d, done %d; want %d, %d", busy.Load(), done.Load(), callers-limit-waiting, limit+waiting)
	}
	if h.pending.Load() != 0 {
		t.Errorf("pending = %d after all returned; slots leak", h.pending.Load())
	}
}

func TestHasherWaitHonoursContext(t *testing.T) {
	h, err := NewHasher(HasherConfig{Params: fastParams, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{})
	h.kdf = func(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
		close(entered)
		<-release
		return make([]byte, n)
	}
	go h.DummyVerify(t.Context(), "holds the only slot")
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := h.Verify(ctx, "waits", "irrelevant"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a cancelled context = %v; want context.Canceled", err)
	}
	close(release)
}

// BenchmarkVerifyDefault is the argon2id time per login with
// DefaultParams: one Verify of a right password.
func BenchmarkVerifyDefault(b *testing.B) {
	enc, err := Hash("correct horse battery staple", DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := Verify("correct horse battery staple", enc); !ok || err != nil {
			b.Fatal("does not verify")
		}
	}
}

// BenchmarkHasherVerifyParallel is login throughput through a default
// Hasher with many concurrent callers: ns/op is the time per login the
// whole machine delivers (1e9/ns/op = logins per second).
func BenchmarkHasherVerifyParallel(b *testing.B) {
	h, err := NewHasher(HasherConfig{MaxWaiting: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := Hash("correct horse battery staple", DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || err != nil {
				b.Error("does not verify", err)
				return
			}
		}
	})
}

// BenchmarkVerifyAlternatives measures the candidates weighed in
// docs/adr/0006-passwords.md against the default.
func BenchmarkVerifyAlternatives(b *testing.B) {
	for _, c := range []struct {
		name string
		p    Params
	}{
		{"OWASP-m19MiB-t2-p1", DefaultParams()},
		{"RFC9106-m64MiB-t3-p4", Params{Memory: 64 * 1024, Time: 3, Threads: 4}},
		{"m64MiB-t3-p2", Params{Memory: 64 * 1024, Time: 3, Threads: 2}},
	} {
		b.Run(c.name, func(b *testing.B) {
			enc, err := Hash("correct horse battery staple", c.p)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if ok, _, err := verifyWith(argon2.IDKey, c.p, "correct horse battery staple", enc); !ok || err != nil {
					b.Fatal("does not verify")
				}
			}
		})
	}
}
