package balp

import (
	"bufio"
	"bytes"
	"encoding/json"

	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/phivault/phivault/internal/ident"
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

// Reader reads events from AuditEvent NDJSON, in order. Blank lines are
// skipped. Lines are parsed in batches by [Reader.Workers] goroutines
// ahead of the caller; call Close when stopping before io.EOF.
type Reader struct {
	// Skipped counts lines that were valid AuditEvents but named
	// neither a user, a login nor a patient (nothing to monitor).
	Skipped int
	// Directory, when set, resolves a user named by PractitionerRole to
	// its Practitioner, and makes a failed access to a patient the
	// directory does not hold OutcomeNotFound (a read of an id that does
	// not exist: enumeration).
	Directory *monitor.Directory
	// Workers parse lines in parallel (default 2); set before the
	// first Next.
	Workers int

	src     io.Reader
	started bool
	order   chan *batch
	stop    chan struct{}
	cur     *batch
	pos     int // next line of cur
	evPos   int // next event of cur's line pos
	line    int
	failed  bool
}

// batchLines is how many lines one parsing job holds.
const batchLines = 512

type batch struct {
	first int // line number of lines[0]
	lines [][]byte
	evs   [][]monitor.Event
	errs  []error
	done  chan struct{}
	long  []bool // lines over MaxLine (dropped: only their number is kept)
	rerr  error  // a read error after the lines (ends the input)
}

// NewReader returns a reader of r.
func NewReader(r io.Reader) *Reader { return &Reader{src: r} }

// Line is the number of the last line read (1-based).
func (r *Reader) Line() int { return r.line }

// Close stops the parsing goroutines. Next must not be called after it.
func (r *Reader) Close() {
	if r.started && r.stop != nil {
		select {
		case <-r.stop:
		default:
			close(r.stop)
		}
	}
}

func (r *Reader) start() {
	r.started = true
	w := r.Workers
	if w <= 0 {
		w = 2
	}
	r.order = make(chan *batch, 2*w)
	r.stop = make(chan struct{})
	work := make(chan *batch, 2*w)
	for range w {
		go func() {
			for b := range work {
				b.evs = make([][]monitor.Event, len(b.lines))
				b.errs = make([]error, len(b.lines))
				for i, l := range b.lines {
					if b.long[i] {
						b.errs[i] = fmt.Errorf("%w: longer than %d bytes", ErrLine, MaxLine)
						continue
					}
					b.evs[i], b.errs[i] = Parse(l)
				}
				close(b.done)
			}
		}()
	}
	go func() {
		defer close(r.order)
		defer close(work)
		lr := newLineReader(r.src)
		line := 0
		for {
			b := &batch{first: line + 1, done: make(chan struct{})}
			for len(b.lines) < batchLines {
				l, long, err := lr.next()
				if err != nil {
					if err != io.EOF {
						b.rerr = err
					}
					break
				}
				line++
				b.lines = append(b.lines, l)
				b.long = append(b.long, long)
			}
			select {
			case work <- b:
			case <-r.stop:
				return
			}
			select {
			case r.order <- b:
			case <-r.stop:
				return
			}
			if len(b.lines) < batchLines {
				return
			}
		}
	}()
}

// Next returns the next event, or io.EOF at the end. An error about a
// line wraps [ErrLine]; the caller may continue with the next call. A
// read error ends the input.
func (r *Reader) Next() (monitor.Event, error) {
	if !r.started {
		r.start()
	}
	for {
		if r.failed {
			return monitor.Event{}, io.EOF
		}
		if r.cur == nil {
			b, ok := <-r.order
			if !ok {
				return monitor.Event{}, io.EOF
			}
			<-b.done
			r.cur, r.pos, r.evPos = b, 0, 0
		}
		b := r.cur
		if r.pos == len(b.lines) {
			r.cur = nil
			if b.rerr != nil {
				r.failed = true
				r.line = b.first + len(b.lines)
				return monitor.Event{}, fmt.Errorf("reading the events: %w", b.rerr)
			}
			continue
		}
		r.line = b.first + r.pos
		evs, err := b.evs[r.pos], b.errs[r.pos]
		if r.evPos == 0 && err == nil && len(evs) == 0 {
			if len(bytes.TrimSpace(b.lines[r.pos])) > 0 {
				r.Skipped++
			}
			r.pos++
			continue
		}
		if err != nil {
			r.pos++
			if !b.long[r.pos-1] && len(bytes.TrimSpace(b.lines[r.pos-1])) == 0 {
				continue
			}
			return monitor.Event{}, fmt.Errorf("line %d: %w", r.line, err)
		}
		ev := evs[r.evPos]
		r.evPos++
		if r.evPos == len(evs) {
			r.pos, r.evPos = r.pos+1, 0
		}
		r.resolve(&ev)
		return ev, nil
	}
}

func (r *Reader) resolve(ev *monitor.Event) {
	d := r.Directory
	if d == nil {
		return
	}
	if p, ok := d.RolePractitioner[ev.User]; ok {
		ev.User = p
	}
	if ev.Kind == monitor.KindAccess && ev.Outcome != monitor.OutcomeSuccess && d.Patients[ev.Patient] == nil {
		ev.Outcome = monitor.OutcomeNotFound
	}
}

// Parse reads one AuditEvent into its events: one per patient for an
// access, one otherwise; none when it names no one.
func Parse(b []byte) ([]monitor.Event, error) {
	var a auditEvent
	if err := jsonv2.Unmarshal(b, &a); err != nil {
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
			strings.HasPrefix(ev.User, ident.PatientPrefix) || strings.HasPrefix(ev.User, "RelatedPerson/") || strings.HasPrefix(ev.User, "Device/")) {
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

// lineReader splits input into lines of at most MaxLine bytes; a longer
// line is consumed to its end and reported as long, so that one
// oversized line costs only itself, never the lines after it. A UTF-8
// byte order mark at the start is dropped.
type lineReader struct {
	br    *bufio.Reader
	first bool
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), first: true}
}

// next returns the next line without its end, or io.EOF.
func (lr *lineReader) next() (line []byte, long bool, err error) {
	var buf []byte
	read := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		read = read || len(chunk) > 0
		if !long {
			if len(buf)+len(chunk) > MaxLine+1 { // +1: the newline
				long, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		if err == io.EOF && !read {
			return nil, false, io.EOF
		}
		break
	}
	if long {
		return nil, true, nil
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	if lr.first {
		buf = bytes.TrimPrefix(buf, []byte("\xef\xbb\xbf"))
		lr.first = false
	}
	return buf, false, nil
}
