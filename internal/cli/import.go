package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/reimport"
)

// ndjsonBatch is how many NDJSON lines travel in one batch Bundle.
const ndjsonBatch = 500

func (e *env) importCmd() *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import FILE|DIR...",
		Short: "Load FHIR Bundles (.json) and NDJSON (.ndjson) into a stopped data directory or a running server",
		Long: `import loads transaction and batch Bundles (*.json) and NDJSON files (*.ndjson,
one resource per line, stored under their own ids) with a progress bar.

Without --url it writes into the data directory (--data) while its server is
stopped. With --url it posts to a running server; the bearer token comes from
PHIVAULT_TOKEN or --token-file (never a flag value). Either way every write is
audited. Bundles of shared resources (Synthea's hospitalInformation* and
practitionerInformation*) are loaded first so that conditional references
resolve.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.runImport(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "base URL of a running server, e.g. https://localhost:8443")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the API token (default: $PHIVAULT_TOKEN)")
	f.StringVar(&o.caCert, "cacert", "", "CA certificate to trust for --url (default: DATA/tls/ca.crt if present, else system roots)")
	f.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	f.IntVar(&o.workers, "workers", 0, "patient bundles loaded at once (default: 8 per CPU into SQLite, CPUs+1 into PostgreSQL or with --url)")
	return cmd
}

type importOptions struct {
	url, tokenFile, caCert string
	quiet                  bool
	workers                int
}

// importTally counts entries per resource type and outcome.
type importTally struct {
	mu       sync.Mutex
	input    map[string]int
	accepted map[string]int
	created  map[string]int // accepted as new (201)
	present  map[string]int // accepted as already stored (200: a conditional create that matched, a PUT)
	failed   int
	firstErr string
	bar      *progressbar.ProgressBar
}

func newTally() *importTally {
	return &importTally{input: map[string]int{}, accepted: map[string]int{}, created: map[string]int{}, present: map[string]int{}}
}

// progress is what the progress bar says: how many entries were new
// and how many already stored.
func (t *importTally) progress() string {
	n, m := 0, 0
	for _, k := range t.created {
		n += k
	}
	for _, k := range t.present {
		m += k
	}
	return fmt.Sprintf("importing: %d new, %d already present", n, m)
}

// loader sends one Bundle somewhere and returns the response Bundle.
type loader func(ctx context.Context, bundle []byte) ([]byte, error)

func (e *env) runImport(ctx context.Context, o importOptions, args []string) error {
	files, err := importFiles(args)
	if err != nil {
		return err
	}
	var total int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
	}
	var load loader
	groupCommit := false // the store commits waiting writes together (SQLite)
	if o.url != "" {
		load, err = e.remoteLoader(o)
		if err != nil {
			return err
		}
	} else {
		c, err := e.loadConfig(config.Overrides{})
		if err != nil {
			return err
		}
		// A direct import runs alone (ADR 0037): not beside a server.
		a, err := app.Open(ctx, c, e.logger(), app.HoldingDataDir(true, "import"))
		if err != nil {
			return err
		}
		defer a.Close()
		load = a.Operator("import").ImportBundle
		groupCommit = c.Storage.PostgresURL == ""
	}
	if o.workers <= 0 {
		o.workers = defaultWorkers(groupCommit, runtime.GOMAXPROCS(0))
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("importing"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetVisibility(!o.quiet),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
	)
	t := newTally()
	t.bar = bar
	start := time.Now()
	// Shared-resource bundles go first, one at a time, so that the
	// patients' conditional references resolve; patient bundles then load
	// on several workers: while one transaction holds the database, the
	// others parse, validate and encrypt.
	shared := 0
	for shared < len(files) && sharedRank(files[shared]) < 2 {
		shared++
	}
	for _, f := range files[:shared] {
		if err := importOne(ctx, f, load, t, bar); err != nil {
			return err
		}
	}
	if err := parallelImport(ctx, files[shared:], o.workers, load, t, bar); err != nil {
		return err
	}
	_ = bar.Finish()
	return e.printTally(t, time.Since(start))
}

// defaultWorkers is how many patient bundles load at once. Into a
// SQLite data directory (groupCommit), many: while the single writer
// commits, the others are parsed, validated, encrypted and hashed on
// every CPU, and the bundles waiting when the writer is free are
// committed together, in one transaction and one fsync (sqldb's group
// commit), so pages the bundles share are written once (ADR 0041). To
// a server, a few: it has clients of its own. Into PostgreSQL, where
// each bundle is a transaction of its own, a few as before: 16 against
// 3 was inconclusive on a shared machine (bench/README.md).
func defaultWorkers(groupCommit bool, cpus int) int {
	if groupCommit {
		return 8 * cpus
	}
	return cpus + 1
}

func (e *env) printTally(t *importTally, d time.Duration) error {
	types := make([]string, 0, len(t.input))
	in, ok := 0, 0
	for k, n := range t.input {
		types = append(types, k)
		in += n
	}
	sort.Strings(types)
	fmt.Fprintf(e.stdout, "%-28s %8s %8s %8s %8s\n", "resource type", "input", "accepted", "new", "present")
	created, present := 0, 0
	for _, k := range types {
		fmt.Fprintf(e.stdout, "%-28s %8d %8d %8d %8d\n", k, t.input[k], t.accepted[k], t.created[k], t.present[k])
		ok += t.accepted[k]
		created += t.created[k]
		present += t.present[k]
	}
	rate := float64(ok) / d.Seconds()
	fmt.Fprintf(e.stdout, "%-28s %8d %8d %8d %8d   (%.1fs, %.0f resources/s)\n", "total", in, ok, created, present, d.Seconds(), rate)
	fmt.Fprintf(e.stdout, "%d new, %d already present\n", created, present)
	if t.failed > 0 {
		return fmt.Errorf("%d entries were refused; first: %s", t.failed, t.firstErr)
	}
	return nil
}

// importFiles expands directories (non-recursively into *.json and
// *.ndjson, recursively into subdirectories) and orders shared-resource
// bundles first.
func importFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", a, err)
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".ndjson")) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", a, err)
		}
	}
	sort.SliceStable(files, func(i, j int) bool {
		if ri, rj := sharedRank(files[i]), sharedRank(files[j]); ri != rj {
			return ri < rj
		}
		return files[i] < files[j]
	})
	return files, nil
}

// sharedRank orders bundles of shared resources (organisations, then
// practitioners) before patient bundles.
func sharedRank(p string) int {
	b := filepath.Base(p)
	switch {
	case strings.HasPrefix(b, "hospitalInformation"), strings.HasPrefix(b, "organizations"), strings.HasSuffix(b, "-shared.json"):
		return 0
	case strings.HasPrefix(b, "practitionerInformation"), strings.HasPrefix(b, "practitioners"):
		return 1
	}
	return 2
}

func importOne(ctx context.Context, f string, load loader, t *importTally, bar *progressbar.ProgressBar) error {
	if err := importFile(ctx, f, load, t, bar); err != nil {
		var fe *fileError
		if errors.As(err, &fe) {
			return err // it names the file and where in it
		}
		return fmt.Errorf("%s: %w", filepath.Base(f), err)
	}
	return nil
}

// parallelImport loads files on n workers and stops at the first error.
func parallelImport(ctx context.Context, files []string, n int, load loader, t *importTally, bar *progressbar.ProgressBar) error {
	if n < 1 {
		n = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan string)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				if err := importOne(ctx, f, load, t, bar); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, f := range files {
		select {
		case work <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

func importFile(ctx context.Context, path string, load loader, t *importTally, bar *progressbar.ProgressBar) error {
	if strings.HasSuffix(path, ".ndjson") {
		return importNDJSON(ctx, path, load, t, bar)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var head struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return jsonError(path, b, err)
	}
	if head.ResourceType != "Bundle" {
		return fmt.Errorf("not a Bundle (resourceType %q)", head.ResourceType)
	}
	types := make([]string, len(head.Entry))
	for i, en := range head.Entry {
		types[i] = en.Resource.ResourceType
	}
	if err := loadBundle(ctx, b, types, load, t); err != nil {
		return err
	}
	_ = bar.Add64(int64(len(b)))
	return nil
}

func loadBundle(ctx context.Context, b []byte, types []string, load loader, t *importTally) error {
	t.mu.Lock()
	for _, typ := range types {
		t.input[typ]++
	}
	t.mu.Unlock()
	// Every create made conditional: importing the same data again
	// creates nothing new (ADR 0037). A patient's transaction whose
	// Patient is not stored yet goes with only its people and directory
	// resources conditional: nothing else of it can be stored.
	rw, err := reimport.Rewrite(b)
	if err != nil {
		return err
	}
	b = rw.Fresh
	if b != nil {
		stored, err := probe(ctx, load, rw.Probe)
		if err != nil {
			return err
		}
		if stored {
			b = nil
		}
	}
	if b == nil {
		if b, err = rw.Full(); err != nil {
			return err
		}
	}
	// A busy server is asked again with every create conditional:
	// whatever the first post stored, sending it again stores nothing
	// twice.
	resp, err := retryBusy(ctx, load, b, rw.Full)
	if err != nil {
		return err
	}
	var out struct {
		Entry []struct {
			Response struct {
				Status  string          `json:"status"`
				Outcome json.RawMessage `json:"outcome"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		return fmt.Errorf("reading the response Bundle: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	defer func() {
		if t.bar != nil {
			t.bar.Describe(t.progress())
		}
	}()
	for i, en := range out.Entry {
		if i >= len(types) {
			break
		}
		if strings.HasPrefix(en.Response.Status, "2") {
			t.accepted[types[i]]++
			if strings.HasPrefix(en.Response.Status, "201") {
				t.created[types[i]]++
			} else {
				t.present[types[i]]++
			}
			continue
		}
		t.failed++
		if t.firstErr == "" {
			t.firstErr = en.Response.Status + " " + string(en.Response.Outcome)
		}
	}
	return nil
}

// probe reports whether the search query (Type?params) matches a stored
// resource, through load as a batch of one GET.
func probe(ctx context.Context, load loader, query string) (bool, error) {
	b, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"request": map[string]any{"method": "GET", "url": query}},
	}})
	if err != nil {
		return false, err
	}
	// The search inside the batch can be the one refused for load (an
	// entry 503, ADR 0023) while the batch itself succeeds: that is
	// retried like a busy server, not the end of the import.
	busyEntry := func(ctx context.Context, b []byte) ([]byte, error) {
		resp, err := load(ctx, b)
		if err != nil {
			return nil, err
		}
		var out struct {
			Entry []struct {
				Response struct {
					Status string `json:"status"`
				} `json:"response"`
			} `json:"entry"`
		}
		if json.Unmarshal(resp, &out) == nil && len(out.Entry) == 1 && strings.HasPrefix(out.Entry[0].Response.Status, "503") {
			return nil, &busyError{err: fmt.Errorf("looking up the bundle's Patient: status %q", out.Entry[0].Response.Status), retry: time.Second}
		}
		return resp, nil
	}
	resp, err := retryBusy(ctx, busyEntry, b, func() ([]byte, error) { return b, nil })
	if err != nil {
		return false, err
	}
	var out struct {
		Entry []struct {
			Resource struct {
				Entry []json.RawMessage `json:"entry"`
			} `json:"resource"`
			Response struct {
				Status string `json:"status"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		return false, fmt.Errorf("reading the response Bundle: %w", err)
	}
	if len(out.Entry) != 1 || !strings.HasPrefix(out.Entry[0].Response.Status, "200") {
		st := ""
		if len(out.Entry) == 1 {
			st = out.Entry[0].Response.Status
		}
		return false, fmt.Errorf("looking up the bundle's Patient: status %q", st)
	}
	return len(out.Entry[0].Resource.Entry) > 0, nil
}

func importNDJSON(ctx context.Context, path string, load loader, t *importTally, bar *progressbar.ProgressBar) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	var entries []map[string]any
	var types []string
	var size int64
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		b, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "batch", "entry": entries})
		if err != nil {
			return err
		}
		if err := loadBundle(ctx, b, types, load, t); err != nil {
			return err
		}
		_ = bar.Add64(size)
		entries, types, size = entries[:0], types[:0], 0
		return nil
	}
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		size += int64(len(sc.Bytes()) + 1)
		if len(raw) == 0 {
			continue
		}
		var res map[string]any
		if err := json.Unmarshal(raw, &res); err != nil {
			// The position in the file: this line, the column in it
			// (raw is the line without its leading blanks).
			lead := len(sc.Bytes()) - len(bytes.TrimLeft(sc.Bytes(), " \t\r"))
			return jsonErrorAt(path, raw, err, line-1, lead)
		}
		typ, _ := res["resourceType"].(string)
		id, _ := res["id"].(string)
		req := map[string]any{"method": "POST", "url": typ}
		if id != "" {
			req = map[string]any{"method": "PUT", "url": typ + "/" + id}
		}
		entries = append(entries, map[string]any{"resource": res, "request": req})
		types = append(types, typ)
		if len(entries) == ndjsonBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading line %d: %w", line+1, err)
	}
	return flush()
}

// remoteLoader posts Bundles to a running server.
func (e *env) remoteLoader(o importOptions) (loader, error) {
	client, tok, err := e.remoteClient(o.tokenFile, o.caCert, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	endpoint := strings.TrimSuffix(o.url, "/") + "/fhir"
	post := func(ctx context.Context, b []byte) (status int, retry time.Duration, body []byte, err error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
		if err != nil {
			return 0, 0, nil, err
		}
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Accept", "application/fhir+json")
		req.Header.Set("Prefer", "return=minimal")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, nil, e.tlsHint(fmt.Errorf("posting to %s: %w", endpoint, err), "--cacert")
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		if err != nil {
			return 0, 0, nil, fmt.Errorf("reading the response: %w", err)
		}
		retry = time.Second
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
			retry = min(time.Duration(n)*time.Second, maxRetryAfter)
		}
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, retry, nil, fmt.Errorf("server answered %s: %s", resp.Status, outcomeText(body))
		}
		return resp.StatusCode, 0, body, nil
	}
	return func(ctx context.Context, b []byte) ([]byte, error) {
		status, retry, body, err := post(ctx, b)
		if status == http.StatusServiceUnavailable {
			return nil, &busyError{err: err, retry: retry}
		}
		return body, err
	}, nil
}

// retryBusy loads b, and while the server is busy (busyError) waits
// for its Retry-After (longer each time) and loads again what again
// returns, up to remoteAttempts in all.
func retryBusy(ctx context.Context, load loader, b []byte, again func() ([]byte, error)) ([]byte, error) {
	resp, err := load(ctx, b)
	var busy *busyError
	for attempt := 2; errors.As(err, &busy) && attempt <= remoteAttempts; attempt++ {
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(busy.retry * time.Duration(attempt-1)):
		}
		if b, err = again(); err != nil {
			return nil, err
		}
		resp, err = load(ctx, b)
	}
	return resp, err
}

// busyError is a server's 503: a lock or statement timeout under load.
// loadBundle sends the Bundle again after retry.
type busyError struct {
	err   error
	retry time.Duration
}

func (e *busyError) Error() string { return e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }

// remoteAttempts bounds the posts of one Bundle to a busy server, and
// maxRetryAfter the wait a server may ask for between them.
const (
	remoteAttempts = 5
	maxRetryAfter  = 10 * time.Second
)

// outcomeText extracts the diagnostics of an OperationOutcome.
func outcomeText(b []byte) string {
	var oo struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) != nil || len(oo.Issue) == 0 {
		return "no details"
	}
	parts := make([]string, len(oo.Issue))
	for i, is := range oo.Issue {
		parts[i] = is.Diagnostics
	}
	return strings.Join(parts, "; ")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
