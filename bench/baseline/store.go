package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite"
)

// store keeps plaintext resources in SQLite with the durability phivault
// uses: WAL, synchronous=FULL, one writer connection and a reader pool.
type store struct {
	w, r *sql.DB
	now  func() time.Time

	// Statements prepared on the writer connection, used through tx.Stmt.
	insRes, insIdent, insSearch, selIdent *sql.Stmt
}

var errNotFound = errors.New("not found")

// badRequest marks errors caused by the request, answered with 400.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func openStore(ctx context.Context, path string) (*store, error) {
	w, err := sql.Open("sqlite", "file:"+path+
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS resources(type TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY(type, id)) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS idents(type TEXT NOT NULL, ident TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY(type, ident)) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS search(type TEXT NOT NULL, patient TEXT NOT NULL, code TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY(type, patient, code, id)) WITHOUT ROWID`,
	} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			w.Close()
			return nil, fmt.Errorf("creating schema: %w", err)
		}
	}
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening %s for reading: %w", path, err)
	}
	n := 4 * runtime.GOMAXPROCS(0)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	st := &store{w: w, r: r, now: time.Now}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.insRes, `INSERT INTO resources(type, id, body) VALUES(?,?,?)`},
		{&st.insIdent, `INSERT OR IGNORE INTO idents(type, ident, id) VALUES(?,?,?)`},
		{&st.insSearch, `INSERT OR IGNORE INTO search(type, patient, code, id) VALUES(?,?,?,?)`},
		{&st.selIdent, `SELECT id FROM idents WHERE type=? AND ident=?`},
	} {
		if *p.dst, err = w.PrepareContext(ctx, p.q); err != nil {
			st.Close()
			return nil, fmt.Errorf("preparing %q: %w", p.q, err)
		}
	}
	return st, nil
}

func (s *store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.insRes, s.insIdent, s.insSearch, s.selIdent} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// importer groups bundles into larger transactions for start-up imports:
// one fsync per importBatch bundles instead of one per bundle.
type importer struct {
	s         *store
	tx        *sql.Tx
	pending   int
	resources int
}

const importBatch = 50

func (im *importer) add(ctx context.Context, raw []byte) error {
	if im.tx == nil {
		tx, err := im.s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		im.tx = tx
	}
	_, _, n, err := im.s.apply(ctx, im.tx, raw)
	if err != nil {
		im.tx.Rollback()
		im.tx = nil
		return err
	}
	im.resources += n
	if im.pending++; im.pending >= importBatch {
		return im.flush()
	}
	return nil
}

func (im *importer) flush() error {
	if im.tx == nil {
		return nil
	}
	err := im.tx.Commit()
	im.tx, im.pending = nil, 0
	return err
}

func (s *store) read(ctx context.Context, typ, id string) ([]byte, error) {
	var body []byte
	err := s.r.QueryRowContext(ctx, `SELECT body FROM resources WHERE type=? AND id=?`, typ, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return body, err
}

type hit struct {
	id   string
	body []byte
}

// search returns resources of typ for patient and code ("" means any),
// ordered by id, or a page of all resources of typ when both are empty.
func (s *store) search(ctx context.Context, typ, patient, code string, count, offset int) ([]hit, error) {
	var rows *sql.Rows
	var err error
	switch {
	case patient == "" && code == "":
		rows, err = s.r.QueryContext(ctx, `SELECT id, body FROM resources WHERE type=? ORDER BY id LIMIT ? OFFSET ?`, typ, count, offset)
	case code == "":
		rows, err = s.r.QueryContext(ctx, `SELECT r.id, r.body FROM search s JOIN resources r ON r.type=s.type AND r.id=s.id
			WHERE s.type=? AND s.patient=? AND s.code='' ORDER BY s.id LIMIT ? OFFSET ?`, typ, patient, count, offset)
	case patient == "":
		rows, err = s.r.QueryContext(ctx, `SELECT DISTINCT r.id, r.body FROM search s JOIN resources r ON r.type=s.type AND r.id=s.id
			WHERE s.type=? AND s.code=? ORDER BY s.id LIMIT ? OFFSET ?`, typ, code, count, offset)
	default:
		rows, err = s.r.QueryContext(ctx, `SELECT r.id, r.body FROM search s JOIN resources r ON r.type=s.type AND r.id=s.id
			WHERE s.type=? AND s.patient=? AND s.code=? ORDER BY s.id LIMIT ? OFFSET ?`, typ, patient, code, count, offset)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []hit
	for rows.Next() {
		var h hit
		if err := rows.Scan(&h.id, &h.body); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// create stores one resource in its own transaction.
func (s *store) create(ctx context.Context, typ string, res map[string]any) (string, []byte, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return "", nil, err
	}
	defer tx.Rollback()
	id := uuid.NewString()
	body, err := s.insert(ctx, tx, typ, id, res)
	if err != nil {
		return "", nil, err
	}
	return id, body, tx.Commit()
}

// insert sets id and meta, stores the resource and its index rows.
func (s *store) insert(ctx context.Context, tx *sql.Tx, typ, id string, res map[string]any) ([]byte, error) {
	res["id"] = id
	res["meta"] = map[string]any{"versionId": "1", "lastUpdated": s.now().UTC().Format(time.RFC3339Nano)}
	body, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	if _, err := tx.StmtContext(ctx, s.insRes).ExecContext(ctx, typ, id, body); err != nil {
		return nil, err
	}
	for _, ident := range identifiers(res) {
		if _, err := tx.StmtContext(ctx, s.insIdent).ExecContext(ctx, typ, ident, id); err != nil {
			return nil, err
		}
	}
	patient := patientOf(typ, id, res)
	if patient != "" {
		for _, c := range append([]string{""}, codes(res)...) {
			if _, err := tx.StmtContext(ctx, s.insSearch).ExecContext(ctx, typ, patient, c, id); err != nil {
				return nil, err
			}
		}
	}
	return body, nil
}

func identifiers(res map[string]any) []string {
	list, _ := res["identifier"].([]any)
	var out []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		sys, _ := m["system"].(string)
		val, _ := m["value"].(string)
		if val != "" {
			out = append(out, sys+"|"+val)
		}
	}
	return out
}

func patientOf(typ, id string, res map[string]any) string {
	if typ == "Patient" {
		return "Patient/" + id
	}
	for _, k := range []string{"subject", "patient"} {
		m, _ := res[k].(map[string]any)
		if ref, _ := m["reference"].(string); strings.HasPrefix(ref, "Patient/") {
			return ref
		}
	}
	return ""
}

func codes(res map[string]any) []string {
	cc, _ := res["code"].(map[string]any)
	list, _ := cc["coding"].([]any)
	var out []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		sys, _ := m["system"].(string)
		c, _ := m["code"].(string)
		if c != "" {
			out = append(out, sys+"|"+c)
		}
	}
	return out
}

// bundle is a transaction or batch Bundle as posted.
type bundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Request  struct {
			Method      string `json:"method"`
			URL         string `json:"url"`
			IfNoneExist string `json:"ifNoneExist"`
		} `json:"request"`
	} `json:"entry"`
}

type entryResult struct {
	Status   string `json:"status"`
	Location string `json:"location,omitempty"`
}

// process applies a transaction or batch Bundle of POST entries in one
// database transaction: urn:uuid fullUrls are rewritten to the assigned ids,
// conditional references Type?identifier=s|v resolve against the identifier
// index, and ifNoneExist skips entries whose identifier is already stored.
// A transaction fails whole on the first bad entry; a batch reports it.
func (s *store) process(ctx context.Context, raw []byte) (kind string, results []entryResult, created int, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return "", nil, 0, err
	}
	defer tx.Rollback()
	kind, results, created, err = s.apply(ctx, tx, raw)
	if err != nil {
		return "", nil, 0, err
	}
	if err := tx.Commit(); err != nil {
		return "", nil, 0, err
	}
	return kind, results, created, nil
}

// apply processes one Bundle inside tx; see process.
func (s *store) apply(ctx context.Context, tx *sql.Tx, raw []byte) (kind string, results []entryResult, created int, err error) {
	var b bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return "", nil, 0, badRequest{"bundle is not valid JSON"}
	}
	if b.ResourceType != "Bundle" || (b.Type != "transaction" && b.Type != "batch") {
		return "", nil, 0, badRequest{"expected a transaction or batch Bundle"}
	}
	atomic := b.Type == "transaction"

	lookup := func(typ, ident string) (string, error) {
		var id string
		err := tx.StmtContext(ctx, s.selIdent).QueryRowContext(ctx, typ, ident).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return id, err
	}

	// Pass 1: assign ids, honour ifNoneExist.
	type planned struct {
		typ, id string
		skip    bool
		res     map[string]any
		err     error
	}
	plan := make([]planned, len(b.Entry))
	local := make(map[string]string, len(b.Entry)) // fullUrl -> Type/id
	for i, e := range b.Entry {
		p := &plan[i]
		p.typ = e.Request.URL
		if e.Request.Method != "POST" || p.typ == "" || strings.ContainsAny(p.typ, "/?") {
			p.err = badRequest{fmt.Sprintf("entry %d: only POST Type is supported", i)}
		} else if p.res, err = decodeResource(e.Resource); err != nil || p.res["resourceType"] != p.typ {
			p.err = badRequest{fmt.Sprintf("entry %d: resource does not match request.url", i)}
		}
		if p.err != nil {
			if atomic {
				return "", nil, 0, p.err
			}
			continue
		}
		if ine := e.Request.IfNoneExist; ine != "" {
			ident, ok := strings.CutPrefix(ine, "identifier=")
			if !ok {
				p.err = badRequest{fmt.Sprintf("entry %d: unsupported ifNoneExist", i)}
				if atomic {
					return "", nil, 0, p.err
				}
				continue
			}
			id, err := lookup(p.typ, ident)
			if err != nil {
				return "", nil, 0, err
			}
			if id != "" {
				p.id, p.skip = id, true
			}
		}
		if p.id == "" {
			p.id = uuid.NewString()
		}
		if e.FullURL != "" {
			local[e.FullURL] = p.typ + "/" + p.id
		}
	}

	// Pass 2: rewrite references and store.
	results = make([]entryResult, len(plan))
	for i := range plan {
		p := &plan[i]
		if p.err == nil && p.skip {
			results[i] = entryResult{Status: "200 OK", Location: p.typ + "/" + p.id + "/_history/1"}
			continue
		}
		if p.err == nil {
			p.err = rewriteRefs(p.res, func(ref string) (string, error) {
				if to, ok := local[ref]; ok {
					return to, nil
				}
				if strings.HasPrefix(ref, "urn:uuid:") {
					return "", badRequest{"unresolved reference " + ref}
				}
				typ, q, ok := strings.Cut(ref, "?")
				if !ok {
					return ref, nil
				}
				ident, ok := strings.CutPrefix(q, "identifier=")
				if !ok {
					return "", badRequest{"unsupported conditional reference " + ref}
				}
				id, err := lookup(typ, ident)
				if err != nil {
					return "", err
				}
				if id == "" {
					return "", badRequest{"conditional reference matches nothing: " + ref}
				}
				return typ + "/" + id, nil
			})
		}
		if p.err == nil {
			_, p.err = s.insert(ctx, tx, p.typ, p.id, p.res)
		}
		if p.err != nil {
			var br badRequest
			if atomic || !errors.As(p.err, &br) {
				return "", nil, 0, p.err
			}
			results[i] = entryResult{Status: "400 Bad Request"}
			continue
		}
		created++
		results[i] = entryResult{Status: "201 Created", Location: p.typ + "/" + p.id + "/_history/1"}
	}
	return b.Type + "-response", results, created, nil
}

// decodeResource decodes a JSON object keeping numbers exact.
func decodeResource(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// rewriteRefs replaces every Reference.reference string in v through fn.
func rewriteRefs(v any, fn func(string) (string, error)) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" {
				to, err := fn(s)
				if err != nil {
					return err
				}
				x[k] = to
				continue
			}
			if err := rewriteRefs(e, fn); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := rewriteRefs(e, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
