package deid

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/keys"
)

// Errors. Transform returns no other kind: a resource either comes out
// de-identified, or is dropped, or the input was not a resource.
var (
	// ErrDropped means the resource must be left out of the export: its
	// type cannot be de-identified element by element (Binary), it
	// carries a modifier extension the transformer does not understand
	// (dropping only the extension would change the resource's
	// meaning), or it is nested too deeply. The reason is counted in the
	// Report; callers skip the resource and go on.
	ErrDropped = errors.New("resource left out of the de-identified export")
	// ErrInput means the body is not one FHIR R4 resource of the type
	// named (malformed JSON, duplicate keys, too large or deep, another
	// type). The error text names no value from the body.
	ErrInput = errors.New("not a FHIR R4 resource of the type named")
)

// Limits.
const (
	// MaxDateShiftDays bounds Options.DateShiftDays: ten years either
	// way is already far more than research needs to hide a date.
	MaxDateShiftDays = 3650
	// maxNesting bounds resources inside resources (contained,
	// Bundle.entry.resource): enough for any real Bundle of contained
	// resources, and it caps the recursion untrusted input can drive.
	maxNesting = 8
)

// Options configure one export. The zero value is Safe Harbor proper:
// dates reduced to their year.
type Options struct {
	// DateShiftDays, when positive, keeps full dates but moves every
	// date of one patient by the same number of days, drawn from the
	// export's key and the patient's id within ±DateShiftDays (at most
	// MaxDateShiftDays). Shifted dates are NOT Safe Harbor
	// (§164.514(b)(2)(i)(C) allows only the year): an export made with
	// it needs an expert determination (§164.514(b)(1)) or a data use
	// agreement for a limited data set (§164.514(e)). Zero keeps only
	// the year.
	DateShiftDays int
	// Now is the moment ages are computed at (a birth date 90 or more
	// years before it is removed). Zero: the time New is called.
	Now time.Time
}

// Transformer de-identifies the resources of one export. Make one per
// export with New: it holds the export's pseudonym key (random, never
// stored), so pseudonyms are the same across the resources of one
// export and unrelated across exports.
//
// A Transformer is safe for concurrent use.
type Transformer struct {
	opts   Options
	schema *schema
	prf    *keys.EphemeralPRF
	report *tally
	// restricted holds the 3-digit ZIP areas that become "000".
	restricted map[string]bool
	// terms are the standard terminologies whose codings are kept.
	terms *terminologies
}

// New returns the transformer of a new export. It fails if an option is
// out of range or no key can be made.
func New(opts Options) (*Transformer, error) {
	if opts.DateShiftDays < 0 || opts.DateShiftDays > MaxDateShiftDays {
		return nil, fmt.Errorf("deid: Options.DateShiftDays must be between 0 and %d", MaxDateShiftDays)
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	opts.Now = opts.Now.UTC()
	s, err := loadSchema()
	if err != nil {
		return nil, fmt.Errorf("deid: %w", err)
	}
	restricted, err := parseZIP3(restrictedZIP3Data)
	if err != nil {
		return nil, fmt.Errorf("deid: %w", err)
	}
	terms, err := parseTerminologies(terminologiesData)
	if err != nil {
		return nil, fmt.Errorf("deid: %w", err)
	}
	p, err := keys.NewEphemeralPRF()
	if err != nil {
		return nil, fmt.Errorf("deid: %w", err)
	}
	return &Transformer{opts: opts, schema: s, prf: p, report: newTally(), restricted: restricted, terms: terms}, nil
}

// Transform returns the de-identified form of body, one FHIR R4
// resource of type resourceType in JSON. Errors wrap ErrDropped (leave
// the resource out, counted in the Report) or ErrInput.
func (t *Transformer) Transform(resourceType string, body []byte) ([]byte, error) {
	res, err := fhir.Decode(bytes.NewReader(body), fhir.Limits{})
	if err != nil {
		t.report.add(resourceType, reasonInvalidInput)
		return nil, fmt.Errorf("de-identifying a %s: %w", safeType(resourceType), ErrInput)
	}
	if res.Type() != resourceType {
		t.report.add(resourceType, reasonInvalidInput)
		return nil, fmt.Errorf("de-identifying a %s: the body is another type: %w", safeType(resourceType), ErrInput)
	}
	w := &walk{t: t, counts: map[string]int{}}
	out, reason := w.resource(map[string]any(res), 0)
	t.report.merge(resourceType, w.counts)
	if out == nil {
		t.report.dropped(resourceType, reason)
		return nil, fmt.Errorf("de-identifying a %s (%s): %w", resourceType, reason, ErrDropped)
	}
	b, err := fhir.Resource(out).Marshal()
	if err != nil {
		return nil, fmt.Errorf("de-identifying a %s: encoding: %w", resourceType, err)
	}
	t.report.done(resourceType)
	return b, nil
}

// Report returns the counts so far: resources written and dropped per
// type, and elements removed or generalised per reason. It holds no
// value from any resource.
func (t *Transformer) Report() Report { return t.report.snapshot() }

// String hides the key.
func (t *Transformer) String() string { return "deid.Transformer{…}" }

// safeType returns name if it is an R4 resource type, else "resource",
// so an error never carries an arbitrary caller string.
func safeType(name string) string {
	if fhir.IsR4Type(name) {
		return name
	}
	return "resource"
}
