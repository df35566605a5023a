// Command baseline is a minimal, deliberately unsecured FHIR server used as
// the reference point for phivault's benchmarks (see bench/README.md).
//
// It stores plaintext JSON in SQLite with the same driver and durability as
// phivault (WAL, synchronous=FULL, one writer connection, a reader pool) and
// answers the same requests, but does no validation, encryption,
// authorization or audit: the gap between the two is the price of those.
// The Authorization header is accepted and ignored. Never put real data in it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/phivault/phivault/internal/synth"
)

// Request limits.
const (
	maxResourceBytes = 1 << 20  // one resource
	maxBundleBytes   = 64 << 20 // one transaction or batch Bundle
	defaultCount     = 20
	maxCount         = 1000
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	dbPath := fs.String("db", "baseline.db", "SQLite database file")
	cert := fs.String("tls-cert", "", "TLS certificate file (PEM); plain HTTP when empty")
	key := fs.String("tls-key", "", "TLS key file (PEM)")
	load := fs.String("load", "", "directory of Bundles (*.json) to import at start-up, in name order")
	synthN := fs.Int("synth", 0, "generate and import this many synthetic patients (internal/synth) at start-up")
	seed := fs.Int64("seed", 1, "seed for -synth")
	loadOnly := fs.Bool("load-only", false, "exit after -load/-synth instead of serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*cert == "") != (*key == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	st, err := openStore(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()

	if *load != "" {
		if err := importDir(ctx, log, st, *load); err != nil {
			return err
		}
	}
	if *synthN > 0 {
		if err := importSynth(ctx, log, st, *synthN, *seed); err != nil {
			return err
		}
	}
	if *loadOnly {
		return nil
	}

	srv := &http.Server{
		Addr:              *addr,
		Handler:           newHandler(log, st),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() {
		log.Info("listening", "addr", *addr, "tls", *cert != "", "db", *dbPath)
		if *cert != "" {
			errc <- srv.ListenAndServeTLS(*cert, *key)
		} else {
			errc <- srv.ListenAndServe()
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// importDir posts every *.json Bundle of dir, in name order, through the same
// transaction path as POST /fhir.
func importDir(ctx context.Context, log *slog.Logger, st *store, dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	slices.Sort(names)
	start := time.Now()
	im := &importer{s: st}
	for i, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if err := im.add(ctx, raw); err != nil {
			return fmt.Errorf("importing %s: %w", filepath.Base(name), err)
		}
		if (i+1)%1000 == 0 {
			log.Info("importing", "bundles", i+1, "of", len(names), "resources", im.resources)
		}
	}
	if err := im.flush(); err != nil {
		return fmt.Errorf("importing %s: %w", dir, err)
	}
	el := time.Since(start)
	log.Info("imported", "bundles", len(names), "resources", im.resources, "seconds", el.Seconds(),
		"resources_per_s", float64(im.resources)/el.Seconds())
	return nil
}

// importSynth generates n patients and imports them without touching disk.
func importSynth(ctx context.Context, log *slog.Logger, st *store, n int, seed int64) error {
	start := time.Now()
	im := &importer{s: st}
	bundles := 0
	err := synth.Generate(ctx, synth.Options{Patients: n, Seed: seed}, func(name string, b []byte) error {
		if err := im.add(ctx, b); err != nil {
			return fmt.Errorf("importing %s: %w", name, err)
		}
		if bundles++; bundles%1000 == 0 {
			log.Info("importing", "bundles", bundles, "resources", im.resources)
		}
		return nil
	})
	if err == nil {
		err = im.flush()
	}
	if err != nil {
		return err
	}
	resources := im.resources
	el := time.Since(start)
	log.Info("imported synthetic patients", "patients", n, "resources", resources, "seconds", el.Seconds(),
		"resources_per_s", float64(resources)/el.Seconds())
	return nil
}

type handler struct {
	log *slog.Logger
	st  *store
}

func newHandler(log *slog.Logger, st *store) http.Handler {
	h := &handler{log: log, st: st}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/{type}/{id}", h.wrap(h.read))
	mux.HandleFunc("GET /fhir/{type}", h.wrap(h.search))
	mux.HandleFunc("POST /fhir/{type}", h.wrap(h.create))
	mux.HandleFunc("POST /fhir", h.wrap(h.bundle))
	mux.HandleFunc("POST /fhir/", h.wrap(h.bundle))
	return mux
}

// httpError carries a status and a public message.
type httpError struct {
	status int
	msg    string
}

func (e httpError) Error() string { return e.msg }

func (h *handler) wrap(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		status, msg := http.StatusInternalServerError, "internal error"
		var he httpError
		var br badRequest
		switch {
		case errors.As(err, &he):
			status, msg = he.status, he.msg
		case errors.As(err, &br):
			status, msg = http.StatusBadRequest, br.msg
		case errors.Is(err, errNotFound):
			status, msg = http.StatusNotFound, "not found"
		default:
			h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeOutcome(w, status, msg)
	}
}

func writeOutcome(w http.ResponseWriter, status int, msg string) {
	code := "processing"
	switch status {
	case http.StatusNotFound:
		code = "not-found"
	case http.StatusBadRequest:
		code = "invalid"
	}
	body, _ := json.Marshal(map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []any{map[string]any{"severity": "error", "code": code, "diagnostics": msg}},
	})
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	w.Write(body)
}

func validType(t string) bool {
	if t == "" || len(t) > 64 || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/fhir"
}

func (h *handler) read(w http.ResponseWriter, r *http.Request) error {
	typ, id := r.PathValue("type"), r.PathValue("id")
	if !validType(typ) {
		return httpError{http.StatusNotFound, "unknown resource type"}
	}
	body, err := h.st.read(r.Context(), typ, id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("ETag", `W/"1"`)
	_, err = w.Write(body)
	return err
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) error {
	typ := r.PathValue("type")
	if !validType(typ) {
		return httpError{http.StatusNotFound, "unknown resource type"}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxResourceBytes))
	if err != nil {
		return httpError{http.StatusRequestEntityTooLarge, "body too large or unreadable"}
	}
	res, err := decodeResource(raw)
	if err != nil || res["resourceType"] != typ {
		return badRequest{"body is not a " + typ}
	}
	id, body, err := h.st.create(r.Context(), typ, res)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Location", baseURL(r)+"/"+typ+"/"+id+"/_history/1")
	w.Header().Set("ETag", `W/"1"`)
	w.WriteHeader(http.StatusCreated)
	_, err = w.Write(body)
	return err
}

func (h *handler) bundle(w http.ResponseWriter, r *http.Request) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBundleBytes))
	if err != nil {
		return httpError{http.StatusRequestEntityTooLarge, "body too large or unreadable"}
	}
	kind, results, _, err := h.st.process(r.Context(), raw)
	if err != nil {
		return err
	}
	entries := make([]any, len(results))
	for i, res := range results {
		entries[i] = map[string]any{"response": res}
	}
	body, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": kind, "entry": entries})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_, err = w.Write(body)
	return err
}

func (h *handler) search(w http.ResponseWriter, r *http.Request) error {
	typ := r.PathValue("type")
	if !validType(typ) {
		return httpError{http.StatusNotFound, "unknown resource type"}
	}
	q := r.URL.Query()
	count, offset := defaultCount, 0
	if v := q.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest{"bad _count"}
		}
		count = min(n, maxCount)
	}
	if v := q.Get("_offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest{"bad _offset"}
		}
		offset = n
	}
	patient := q.Get("patient")
	if patient == "" {
		patient = q.Get("subject")
	}
	if patient != "" && !strings.HasPrefix(patient, "Patient/") {
		patient = "Patient/" + patient
	}
	hits, err := h.st.search(r.Context(), typ, patient, q.Get("code"), count, offset)
	if err != nil {
		return err
	}
	base := baseURL(r)
	page := func(off int) string {
		v := make(map[string][]string, len(q))
		for k, vs := range q {
			v[k] = vs
		}
		v["_count"] = []string{strconv.Itoa(count)}
		v["_offset"] = []string{strconv.Itoa(off)}
		return base + "/" + typ + "?" + encodeQuery(v)
	}
	b := make([]byte, 0, 256+len(hits)*2048)
	b = append(b, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"self","url":`...)
	b = appendJSONString(b, page(offset))
	b = append(b, '}')
	if len(hits) == count && count > 0 {
		b = append(b, `,{"relation":"next","url":`...)
		b = appendJSONString(b, page(offset+count))
		b = append(b, '}')
	}
	b = append(b, `],"entry":[`...)
	for i, hit := range hits {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"fullUrl":`...)
		b = appendJSONString(b, base+"/"+typ+"/"+hit.id)
		b = append(b, `,"resource":`...)
		b = append(b, hit.body...)
		b = append(b, `,"search":{"mode":"match"}}`...)
	}
	b = append(b, "]}"...)
	w.Header().Set("Content-Type", "application/fhir+json")
	_, err = w.Write(b)
	return err
}

func encodeQuery(v map[string][]string) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for _, k := range keys {
		for _, val := range v[k] {
			if sb.Len() > 0 {
				sb.WriteByte('&')
			}
			sb.WriteString(queryEscape(k))
			sb.WriteByte('=')
			sb.WriteString(queryEscape(val))
		}
	}
	return sb.String()
}

// queryEscape escapes like url.QueryEscape but keeps '|', '/' and ':'
// readable, as FHIR servers commonly do.
func queryEscape(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~|/:", c) >= 0 {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
