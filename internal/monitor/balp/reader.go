package balp

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/monitor"
)

const (
	// MaxLine bounds one NDJSON line, in bytes.
	MaxLine = 1 << 20
	// MaxPatients bounds the patients read from one event; an event
	// naming more is read with the first MaxPatients and marked Bulk.
	MaxPatients = 10_000
	// BulkPatients: an event naming more patients than this is a bulk access.
	BulkPatients = 20
)

// ErrLine is wrapped by errors about one line of input.
var ErrLine = errors.New("unreadable AuditEvent")

// Reader reads events from AuditEvent NDJSON. Blank lines are skipped.
type Reader struct {
	sc      *bufio.Scanner
	line    int
	pending []monitor.Event
	// Skipped counts lines that were valid AuditEvents but named
	// neither a user, a login nor a patient (nothing to monitor).
	Skipped int
	// Directory, when set, resolves a user named by PractitionerRole to
	// its Practitioner, and makes a failed access to a patient the
	// directory does not hold OutcomeNotFound (a read of an id that does
	// not exist: enumeration).
	Directory *monitor.Directory
}

// NewReader returns a reader of r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return &Reader{sc: sc}
}

// Line is the number of the last line read (1-based).
func (r *Reader) Line() int { return r.line }

// Next returns the next event, or io.EOF at the end. An error about a
// line wraps [ErrLine]; the caller may continue with the next call.
func (r *Reader) Next() (monitor.Event, error) {
	for len(r.pending) == 0 {
		if !r.sc.Scan() {
			if err := r.sc.Err(); err != nil {
				r.line++
				if errors.Is(err, bufio.ErrTooLong) {
					return monitor.Event{}, fmt.Errorf("line %d: %w: longer than %d bytes", r.line, ErrLine, MaxLine)
				}
				return monitor.Event{}, fmt.Errorf("reading the events: %w", err)
			}
			return monitor.Event{}, io.EOF
		}
		r.line++
		b := r.sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		evs, err := Parse(b)
		if err != nil {
			return monitor.Event{}, fmt.Errorf("line %d: %w", r.line, err)
		}
		if len(evs) == 0 {
			r.Skipped++
			continue
		}
		r.pending = evs
	}
	ev := r.pending[0]
	r.pending = r.pending[1:]
	if d := r.Directory; d != nil {
		if p, ok := d.RolePractitioner[ev.User]; ok {
			ev.User = p
		}
		if ev.Kind == monitor.KindAccess && ev.Outcome != monitor.OutcomeSuccess && d.Patients[ev.Patient] == nil {
			ev.Outcome = monitor.OutcomeNotFound
		}
	}
	return ev, nil
}

// Parse reads one AuditEvent into its events: one per patient for an
// access, one otherwise; none when it names no one.
func Parse(b []byte) ([]monitor.Event, error) {
	var a auditEvent
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrLine, jsonProblem(err))
	}
	if a.ResourceType != "AuditEvent" {
		return nil, fmt.Errorf("%w: resourceType is not \"AuditEvent\"", ErrLine)
	}
	t, err := time.Parse(time.RFC3339Nano, a.Recorded)
	if err != nil {
		return nil, fmt.Errorf("%w: recorded is not a FHIR instant", ErrLine)
	}
	ev := monitor.Event{Time: t, Ref: "AuditEvent/" + clean(a.ID)}
	req := a.requestor()
	if req != nil {
		ev.User = reference(req.Who.Reference)
		if ev.User == "" || !(strings.HasPrefix(ev.User, "Practitioner/") || strings.HasPrefix(ev.User, "PractitionerRole/") ||
			strings.HasPrefix(ev.User, "Patient/") || strings.HasPrefix(ev.User, "RelatedPerson/") || strings.HasPrefix(ev.User, "Device/")) {
			if ev.User == "" {
				ev.Login = clean(firstNonEmpty(req.Who.Identifier.Value, req.AltID, req.Name, req.Who.Display))
			}
		}
		ev.Address = clean(req.Network.Address)
		if len(req.Policy) > 0 {
			ev.Session = clean(req.Policy[0])
		}
		ev.Purpose = purpose(req.PurposeOfUse)
	}
	if ev.Address == "" {
		for _, ag := range a.Agent {
			if ag.Network.Address != "" {
				ev.Address = clean(ag.Network.Address)
				break
			}
		}
	}
	if ev.Session == "" {
		ev.Session = sessionExtension(a.Extension)
		for i := 0; ev.Session == "" && i < len(a.Agent); i++ {
			ev.Session = sessionExtension(a.Agent[i].Extension)
		}
	}
	if ev.Purpose == "" {
		ev.Purpose = purpose(a.PurposeOfEvent)
	}
	ev.BreakGlass = ev.Purpose == "ETREAT" || ev.Purpose == "BTG"

	patients := a.patients()
	ev.Kind, ev.Action = a.kind(len(patients) > 0)
	ev.Outcome = a.outcome(ev.Kind)
	ev.Bulk = ev.Action == "export" || ev.Action == "$everything" && len(patients) > 1 || len(patients) > BulkPatients
	if ev.Kind != monitor.KindAccess {
		if ev.User == "" && ev.Login == "" && ev.Address == "" {
			return nil, nil
		}
		return []monitor.Event{ev}, nil
	}
	if ev.User == "" && ev.Login == "" {
		return nil, nil
	}
	out := make([]monitor.Event, 0, len(patients))
	for _, p := range patients {
		e := ev
		e.Patient = p
		out = append(out, e)
	}
	return out, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// clean keeps an identifier printable and bounded (256 bytes).
func clean(s string) string {
	if len(s) > 256 {
		s = s[:256]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// reference turns a reference into "Type/id" (relative, absolute, with
// _history), or "" when it is not one.
func reference(raw string) string {
	s := raw
	if i := strings.Index(s, "/_history/"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 {
		return ""
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if id == "" || len(id) > 64 || typ == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return ""
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return ""
		}
	}
	return typ + "/" + id
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("a %s where %s was expected", te.Value, te.Type)
	default:
		return "invalid JSON"
	}
}
