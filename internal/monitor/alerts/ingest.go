package alerts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/balp"
	"github.com/phivault/phivault/internal/monitor/fhirctx"
	"github.com/phivault/phivault/internal/storage"
)

// Progress is reported during an ingest, after the context and then
// every ProgressEvery events and at the end.
type Progress struct {
	Phase  string // "context", "events", "alerts", "done"
	Bytes  int64  // input read so far
	Events int64  // events read so far
	Alerts int    // alerts stored so far
}

// ProgressEvery is how many events pass between progress reports.
const ProgressEvery = 10000

// flushEvery is how many events pass between calls of the engine's
// Alerts(false), so that the alerts of a long log are stored as they
// come and the engine's output stays bounded.
const flushEvery = 200000

// ChunkSize is the uncompressed size of one sealed chunk of ingested
// data: 1 MiB keeps each sealing and each row small (PostgreSQL and
// SQLite store it inline or out of line at no great cost) while the
// per-chunk overhead (33 bytes of AEAD, a row) stays negligible.
const ChunkSize = 1 << 20

// Files yields an ingest's event files in order: Next returns the next
// one, or io.EOF after the last. A file is read to its end before Next
// is called again (a streamed multipart request implements it).
type Files interface {
	Next() (io.Reader, error)
}

// FileList is Files over readers already open.
func FileList(rs ...io.Reader) Files { return &fileList{rs: rs} }

type fileList struct{ rs []io.Reader }

func (l *fileList) Next() (io.Reader, error) {
	if len(l.rs) == 0 {
		return nil, io.EOF
	}
	r := l.rs[0]
	l.rs = l.rs[1:]
	return r, nil
}

// Ingested is what an ingest did.
type Ingested struct {
	Run        string
	Events     int64
	Bytes      int64
	Alerts     int // stored (created or updated)
	Suppressed int
	// Unreadable counts event lines that were not AuditEvents (skipped,
	// up to MaxUnreadable).
	Unreadable int
	// ContextUnreadable counts context resources whose fields did not
	// have the shape expected (skipped: they explain nothing).
	ContextUnreadable int
}

// MaxUnreadable bounds the unreadable event lines an ingest skips; one
// more fails it (the file is probably not AuditEvent NDJSON).
const MaxUnreadable = 1000

// sourceName is what a source may be called: it is stored and shown in
// the clear, so no free text.
var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidSource reports whether name may name an ingested source.
func ValidSource(name string) bool { return sourceName.MatchString(name) && name != SourcePhivault }

// Ingest reads another system's access log: the context Bundle (the
// hospital's directory and care relationships) and the AuditEvent
// NDJSON files in order (each in time order, the files one after the
// other), explains and scores the accesses, and stores the alerts under
// source. The input itself is stored too, compressed and sealed, so an
// investigation can go back to it. Only a privacy officer ingests. The
// run and its outcome are audited (ActionMonitorIngest), a failed run
// too. progress may be nil.
func (s *Service) Ingest(ctx context.Context, by Actor, source string, contextFile io.Reader, eventFiles Files, progress func(Progress)) (Ingested, error) {
	if accessOf(by) != all {
		return Ingested{}, s.refuse(ctx, by, audit.ActionMonitorIngest)
	}
	if !ValidSource(source) {
		return Ingested{}, fmt.Errorf("%w: a source name is 1 to 64 of a-z 0-9 . _ - (and not %q)", ErrInvalid, SourcePhivault)
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	id, err := s.newID()
	if err != nil {
		return Ingested{}, err
	}
	run := storage.MonitorRun{ID: id, Source: source, Actor: authorOf(by), Started: s.now().UTC(), State: "running"}
	if err := s.tx.Update(ctx, func(t storage.MonitorTx) error { return t.InsertMonitorRun(ctx, run) }); err != nil {
		return Ingested{}, err
	}
	res, ierr := s.ingest(ctx, id, source, contextFile, eventFiles, progress)
	run.Finished, run.Events, run.Bytes = s.now().UTC(), res.Events, res.Bytes
	run.Alerts, run.Suppressed = int64(res.Alerts), int64(res.Suppressed)
	run.State = "done"
	outcome := audit.OutcomeSuccess
	if ierr != nil {
		run.State, outcome = "failed", audit.OutcomeError
	}
	ev := audit.Event{Time: run.Finished, Action: audit.ActionMonitorIngest, Outcome: outcome, Agent: by.Agent, Purpose: by.Purpose,
		Entities: []string{"MonitorRun/" + id}, RequestID: by.RequestID, Status: by.Status,
		Policies: []string{"source=" + source, "events=" + strconv.FormatInt(res.Events, 10), "alerts=" + strconv.Itoa(res.Alerts),
			"suppressed=" + strconv.Itoa(res.Suppressed), "bytes=" + strconv.FormatInt(res.Bytes, 10),
			"unreadable=" + strconv.Itoa(res.Unreadable), "context-unreadable=" + strconv.Itoa(res.ContextUnreadable)}}
	// The run's end is recorded even when the caller gave up.
	rctx := context.WithoutCancel(ctx)
	if err := s.record(rctx, func(t storage.MonitorTx) error { return t.FinishMonitorRun(rctx, run) }, ev); err != nil {
		return res, errors.Join(ierr, err)
	}
	if ierr != nil {
		return res, ierr
	}
	progress(Progress{Phase: "done", Bytes: res.Bytes, Events: res.Events, Alerts: res.Alerts})
	return res, nil
}

func (s *Service) ingest(ctx context.Context, run, source string, contextFile io.Reader, eventFiles Files, progress func(Progress)) (Ingested, error) {
	res := Ingested{Run: run}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return res, err
	}
	defer enc.Close()
	w := &chunker{ctx: ctx, s: s, run: run, kind: "context", enc: enc}
	dir, cst, err := fhirctx.ParseWith(io.TeeReader(contextFile, w), fhirctx.Limits{})
	if err != nil {
		return res, fmt.Errorf("%w: reading the context Bundle: %w", ErrInvalid, err)
	}
	// The parser may stop before the end (trailing whitespace): store all.
	if _, err := io.Copy(w, contextFile); err != nil {
		return res, fmt.Errorf("reading the context Bundle: %w", err)
	}
	if err := w.flush(); err != nil {
		return res, err
	}
	res.Bytes = w.written()
	res.ContextUnreadable = cst.Unreadable
	progress(Progress{Phase: "context", Bytes: res.Bytes})
	eng := monitor.NewEngine(dir, monitor.Options{Source: source})
	save := func(as []monitor.Alert) error {
		if len(as) == 0 {
			return nil
		}
		got, err := s.Save(ctx, as)
		res.Alerts += len(got.IDs)
		res.Suppressed += got.Suppressed
		return err
	}
	w.kind = "events"
	for i := 0; eventFiles != nil; i++ {
		f, err := eventFiles.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("reading events file %d: %w", i+1, err)
		}
		before := w.written()
		if err := s.readEvents(ctx, i, io.TeeReader(f, w), dir, eng, &res, save, func() {
			progress(Progress{Phase: "events", Bytes: res.Bytes + w.written() - before, Events: res.Events, Alerts: res.Alerts})
		}); err != nil {
			return res, err
		}
		if _, err := io.Copy(w, f); err != nil {
			return res, fmt.Errorf("reading events file %d: %w", i+1, err)
		}
		if err := w.flush(); err != nil {
			return res, err
		}
		res.Bytes += w.written() - before
	}
	progress(Progress{Phase: "alerts", Bytes: res.Bytes, Events: res.Events, Alerts: res.Alerts})
	if err := save(eng.Alerts(true)); err != nil {
		return res, err
	}
	return res, nil
}

// readEvents feeds the events of file i (0-based) to eng.
func (s *Service) readEvents(ctx context.Context, i int, f io.Reader, dir *monitor.Directory, eng *monitor.Engine, res *Ingested,
	save func([]monitor.Alert) error, report func()) error {
	rd := balp.NewReader(f)
	rd.Directory = dir
	defer rd.Close()
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, balp.ErrLine) && res.Unreadable < MaxUnreadable {
			res.Unreadable++
			continue
		}
		if err != nil {
			// The balp error names the line number and the reason, never
			// the line's content.
			return fmt.Errorf("%w: events file %d: %w", ErrInvalid, i+1, err)
		}
		eng.Add(ev)
		res.Events++
		if res.Events%ProgressEvery == 0 {
			report()
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if res.Events%flushEvery == 0 {
			if err := save(eng.Alerts(false)); err != nil {
				return err
			}
		}
	}
}

// chunker collects what it is written, and stores it as sealed,
// compressed chunks of ChunkSize bytes (before compression).
type chunker struct {
	mu    sync.Mutex      // Write runs on the event reader's goroutine
	ctx   context.Context //nolint:containedctx // one ingest's writer, living only inside it
	s     *Service
	run   string
	kind  string
	enc   *zstd.Encoder
	buf   []byte
	seq   int64
	total int64
}

func (c *chunker) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.total += int64(n)
	for len(p) > 0 {
		k := min(len(p), ChunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == ChunkSize {
			if err := c.flushLocked(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// written is how many bytes were written so far.
func (c *chunker) written() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// flush stores the buffered bytes, if any, as one chunk.
func (c *chunker) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *chunker) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.seq++
	id := c.run + "/" + strconv.FormatInt(c.seq, 10)
	sealed, err := c.s.seal.Seal(c.ctx, kindChunk, id, 1, c.enc.EncodeAll(c.buf, nil))
	if err != nil {
		return fmt.Errorf("sealing ingested data: %w", err)
	}
	ch := storage.MonitorChunk{Run: c.run, Seq: c.seq, Kind: c.kind, Body: sealed}
	if err := c.s.tx.Update(c.ctx, func(t storage.MonitorTx) error { return t.PutMonitorChunk(c.ctx, ch) }); err != nil {
		return err
	}
	c.buf = c.buf[:0]
	return nil
}

// Chunks calls fn with the ingested data of run, opened and
// decompressed, chunk by chunk in order (for an investigation, and for
// tests). Only a privacy officer reads it; the read is audited
// (ActionMonitorAlertRead naming the run) first.
func (s *Service) Chunks(ctx context.Context, by Actor, run string, fn func(kind string, data []byte) error) error {
	if accessOf(by) != all {
		return s.refuse(ctx, by, audit.ActionMonitorAlertRead, "MonitorRun/"+run)
	}
	ev := s.readEvent(by)
	ev.Entities = []string{"MonitorRun/" + run}
	if err := s.record(ctx, nil, ev); err != nil {
		return err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(4*ChunkSize))
	if err != nil {
		return err
	}
	defer dec.Close()
	return s.store.MonitorChunks(ctx, run, func(c storage.MonitorChunk) error {
		z, err := s.seal.Open(ctx, kindChunk, run+"/"+strconv.FormatInt(c.Seq, 10), 1, c.Body)
		if err != nil {
			return fmt.Errorf("opening ingested data of run %s: %w", run, err)
		}
		data, err := dec.DecodeAll(z, nil)
		if err != nil {
			return fmt.Errorf("decompressing ingested data of run %s: %w", run, err)
		}
		return fn(c.Kind, data)
	})
}

// Runs returns the latest ingest runs, newest first (not PHI: counts,
// source names and account ids). Only a privacy officer lists them.
func (s *Service) Runs(ctx context.Context, by Actor, limit int) ([]storage.MonitorRun, error) {
	if accessOf(by) != all {
		return nil, s.refuse(ctx, by, audit.ActionMonitorAlertRead, "MonitorRun")
	}
	return s.store.MonitorRuns(ctx, limit)
}
