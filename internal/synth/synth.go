package synth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Limits and defaults of [Options].
const (
	// MaxPatients bounds one run; file names carry a 7-digit index.
	MaxPatients = 1_000_000
)

// DefaultStart is the reference "now" used when Options.Start is zero. It is
// fixed, never the wall clock, so that output stays reproducible.
var DefaultStart = time.Date(2026, time.January, 1, 12, 0, 0, 0, time.UTC)

// ErrInvalidOptions is returned (wrapped, naming the field) by [Generate]
// when an option is out of range. Callers fix their input; retrying is useless.
var ErrInvalidOptions = errors.New("synth: invalid options")

// Options configures [Generate]. The zero value generates only the shared
// provider directory, with seed 0 and [DefaultStart].
type Options struct {
	// Patients is the number of patient transaction Bundles, 0..MaxPatients.
	Patients int
	// Seed selects the population; equal Options give byte-identical output.
	Seed int64
	// Start is the reference "now": every date lies before it. Its
	// location is ignored (output is in UTC). Zero means [DefaultStart].
	Start time.Time
}

// SharedName is the name under which [Generate] emits the provider directory.
// Patient bundles are named "NNNNNNN-patient.json" (1-based, zero-padded), so
// a lexical sort of the names gives the order of emission.
const SharedName = "0000000-shared.json"

// Generate emits the provider directory as a batch Bundle named [SharedName],
// then opt.Patients transaction Bundles, one per patient, in order.
//
// emit is called from the calling goroutine only. The bundle slice is reused
// after emit returns: emit must copy it to keep it. An error from emit stops
// generation and is returned wrapped; so is ctx.Err() when ctx is done
// (checked before each bundle). Invalid options return [ErrInvalidOptions].
func Generate(ctx context.Context, opt Options, emit func(name string, bundle []byte) error) error {
	if opt.Patients < 0 || opt.Patients > MaxPatients {
		return fmt.Errorf("%w: Patients %d is outside 0..%d", ErrInvalidOptions, opt.Patients, MaxPatients)
	}
	start := opt.Start
	if start.IsZero() {
		start = DefaultStart
	}
	start = start.UTC().Truncate(time.Second)

	dir := newDirectory()
	buf := make([]byte, 0, 256<<10)
	if err := ctx.Err(); err != nil {
		return err
	}
	buf = appendJSON(buf[:0], dir.bundle())
	if err := emit(SharedName, buf); err != nil {
		return fmt.Errorf("emitting %s: %w", SharedName, err)
	}

	g := &patientGen{dir: dir, now: start}
	for i := 1; i <= opt.Patients; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		// One PCG stream per patient: patient i is the same whatever
		// Patients is, and no state is carried between patients.
		g.r = rand.New(rand.NewPCG(uint64(opt.Seed), uint64(i)))
		buf = appendJSON(buf[:0], g.patientBundle())
		name := fmt.Sprintf("%07d-patient.json", i)
		if err := emit(name, buf); err != nil {
			return fmt.Errorf("emitting %s: %w", name, err)
		}
	}
	return nil
}

// newUUID draws a version-4 UUID from r.
func newUUID(r *rand.Rand) string {
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const h = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, h[c>>4], h[c&0xf])
	}
	return string(out)
}

// Small helpers for FHIR datatypes.

func coding(system string, c code) obj {
	return o("system", system, "code", c.code, "display", c.display)
}

func concept(system string, c code) obj {
	return o("coding", []obj{coding(system, c)}, "text", c.display)
}

func ref(reference, display string) obj {
	return o("reference", reference, "display", display)
}

func dateTime(t time.Time) string { return t.Format("2006-01-02T15:04:05-07:00") }

func instant(t time.Time) string { return t.Format("2006-01-02T15:04:05.000-07:00") }

func entry(fullURL string, res obj, request obj) obj {
	return o("fullUrl", fullURL, "resource", res, "request", request)
}

func post(typ string) obj { return o("method", "POST", "url", typ) }
