package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/monitor/alerts"
)

// Privacy and intrusion monitoring (ADR 0046): ingest another system's
// access log, list the alerts. Offline (--data) the command acts as the
// privacy office, recorded in the audit log as the client "cli"; with
// --url it acts as its token's account, which needs the privacy-officer
// role.

func (e *env) monitorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Privacy and intrusion monitoring: ingest another system's access log, list alerts",
	}
	cmd.AddCommand(e.monitorIngestCmd(), e.monitorAlertsCmd())
	return cmd
}

// remoteOptions are the flags of a command that may talk to a server.
type remoteOptions struct {
	url, tokenFile, caCert string
}

func (o *remoteOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "base URL of a running server, e.g. https://localhost:8443 (default: the data directory, offline)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the API token for --url (default: $PHIVAULT_TOKEN); its account needs the privacy-officer role")
	f.StringVar(&o.caCert, "cacert", "", "CA certificate to trust for --url (default: DATA/tls/ca.crt if present, else system roots)")
}

type ingestOptions struct {
	remoteOptions
	context string
	events  []string
	source  string
	quiet   bool
}

func (e *env) monitorIngestCmd() *cobra.Command {
	var o ingestOptions
	cmd := &cobra.Command{
		Use:   "ingest --context FILE --events FILE... [--source NAME]",
		Short: "Explain and score another system's access log (FHIR AuditEvent NDJSON) against its context Bundle",
		Long: `ingest reads the context, a FHIR Bundle of the hospital's directory and care
relationships (Organization, Practitioner, PractitionerRole, Patient,
Encounter, CareTeam, ServiceRequest...), and the access log, AuditEvent
NDJSON in the IHE BALP shape, one or more files each in time order. It looks
for an explanation of every access, scores what is left and stores the
alerts under the source's name. The input is PHI: it is stored compressed
and sealed with the organisation's key, and the ingest is audited.

Without --url it writes into the data directory (--data). With --url it
streams both files to a running server (POST /admin/api/monitor/ingest).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.events = append(o.events, args...) // --events a b c
			if o.context == "" || len(o.events) == 0 {
				return fmt.Errorf("%w: monitor ingest needs --context FILE and --events FILE", errUsage)
			}
			if !alerts.ValidSource(o.source) {
				return fmt.Errorf("--source: a name of 1 to 64 characters a-z 0-9 . _ - (and not %q)", alerts.SourcePhivault)
			}
			return e.runIngest(cmd, o)
		},
	}
	o.remoteOptions.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.context, "context", "", "the context FHIR Bundle (JSON)")
	f.StringArrayVar(&o.events, "events", nil, "AuditEvent NDJSON file (repeat, or list the files after it)")
	f.StringVar(&o.source, "source", "external", "name of the source system, shown with its alerts")
	f.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	return cmd
}

func (e *env) runIngest(cmd *cobra.Command, o ingestOptions) error {
	ctx := cmd.Context()
	paths := append([]string{o.context}, o.events...)
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a file", p)
		}
		total += st.Size()
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("ingesting"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetVisibility(!o.quiet),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
	)
	var res alerts.Ingested
	var err error
	if o.url != "" {
		res, err = e.ingestRemote(ctx, o, paths, bar)
	} else {
		res, err = e.ingestOffline(cmd, o, paths, bar)
	}
	if err != nil {
		return err
	}
	_ = bar.Finish()
	fmt.Fprintf(e.stdout, "ingested %d events (%d bytes) from %q: %d alerts stored, %d suppressed", res.Events, res.Bytes, o.source, res.Alerts, res.Suppressed)
	if res.ContextUnreadable > 0 {
		fmt.Fprintf(e.stdout, ", %d unreadable context resources skipped", res.ContextUnreadable)
	}
	if res.Unreadable > 0 {
		fmt.Fprintf(e.stdout, ", %d unreadable lines skipped", res.Unreadable)
	}
	fmt.Fprintf(e.stdout, " (run %s)\n", res.Run)
	return nil
}

// barReader advances bar by what is read.
type barReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (b *barReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	_ = b.bar.Add(n)
	return n, err
}

// openFiles opens paths lazily, one at a time, as alerts.Files: each is
// closed when the next is asked for, and by close.
type openFiles struct {
	paths []string
	bar   *progressbar.ProgressBar
	cur   *os.File
}

func (f *openFiles) Next() (io.Reader, error) {
	f.close()
	if len(f.paths) == 0 {
		return nil, io.EOF
	}
	fh, err := os.Open(f.paths[0])
	if err != nil {
		return nil, err
	}
	f.paths, f.cur = f.paths[1:], fh
	return &barReader{r: fh, bar: f.bar}, nil
}

func (f *openFiles) close() {
	if f.cur != nil {
		f.cur.Close()
		f.cur = nil
	}
}

func (e *env) ingestOffline(cmd *cobra.Command, o ingestOptions, paths []string, bar *progressbar.ProgressBar) (alerts.Ingested, error) {
	a, err := e.openApp(cmd)
	if err != nil {
		return alerts.Ingested{}, err
	}
	defer a.Close()
	svc, err := a.Monitor()
	if err != nil {
		return alerts.Ingested{}, err
	}
	files := &openFiles{paths: paths, bar: bar}
	defer files.close()
	ctxFile, err := files.Next()
	if err != nil {
		return alerts.Ingested{}, err
	}
	res, err := svc.Ingest(cmd.Context(), alerts.Offline(), o.source, ctxFile, files, func(p alerts.Progress) {
		if p.Phase == "events" || p.Phase == "alerts" {
			bar.Describe(fmt.Sprintf("ingesting: %d events, %d alerts", p.Events, p.Alerts))
		}
	})
	if err != nil {
		return res, ingestHint(err)
	}
	return res, nil
}

// ingestHint says what to do about a refused input.
func ingestHint(err error) error {
	if errors.Is(err, alerts.ErrInvalid) {
		return fmt.Errorf("%w\nThe context must be a FHIR Bundle (JSON) and each events file FHIR AuditEvent NDJSON, one resource a line", err)
	}
	return err
}

// ingestRemote streams the files as one multipart request.
func (e *env) ingestRemote(ctx context.Context, o ingestOptions, paths []string, bar *progressbar.ProgressBar) (alerts.Ingested, error) {
	client, tok, err := e.remoteClient(o.tokenFile, o.caCert, 0) // bounded by the server's handler timeout
	if err != nil {
		return alerts.Ingested{}, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeParts(mw, paths, bar))
	}()
	endpoint := strings.TrimSuffix(o.url, "/") + "/admin/api/monitor/ingest?source=" + url.QueryEscape(o.source)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, pr)
	if err != nil {
		pr.Close()
		return alerts.Ingested{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		pr.Close()
		return alerts.Ingested{}, e.tlsHint(fmt.Errorf("posting to %s: %w", endpoint, err), "--cacert")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return alerts.Ingested{}, fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return alerts.Ingested{}, fmt.Errorf("server answered %s: %s", resp.Status, apiErrorText(body))
	}
	var out struct {
		Run               string `json:"run"`
		Events            int64  `json:"events"`
		Bytes             int64  `json:"bytes"`
		Alerts            int    `json:"alerts"`
		Suppressed        int    `json:"suppressed"`
		Unreadable        int    `json:"unreadable"`
		ContextUnreadable int    `json:"context_unreadable"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return alerts.Ingested{}, fmt.Errorf("reading the response: %w", err)
	}
	return alerts.Ingested{Run: out.Run, Events: out.Events, Bytes: out.Bytes, Alerts: out.Alerts, Suppressed: out.Suppressed, Unreadable: out.Unreadable, ContextUnreadable: out.ContextUnreadable}, nil
}

// writeParts writes the context part and an events part per file.
func writeParts(mw *multipart.Writer, paths []string, bar *progressbar.ProgressBar) error {
	for i, p := range paths {
		name := "events"
		if i == 0 {
			name = "context"
		}
		w, err := mw.CreateFormFile(name, filepath.Base(p))
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, &barReader{r: f, bar: bar})
		f.Close()
		if err != nil {
			return err
		}
	}
	return mw.Close()
}

// apiErrorText is the "error" of an admin API answer, else a short,
// printable prefix of it.
func apiErrorText(b []byte) string {
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		if e.RequestID != "" {
			return e.Error + " (request " + e.RequestID + ")"
		}
		return e.Error
	}
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

type alertsOptions struct {
	remoteOptions
	since    string
	format   string
	status   string
	minScore float64
	limit    int
}

func (e *env) monitorAlertsCmd() *cobra.Command {
	var o alertsOptions
	cmd := &cobra.Command{
		Use:   "alerts [--since DURATION|RFC3339] [--format tsv|json]",
		Short: "List the monitoring alerts, worst first",
		Long: `alerts prints the alerts created or changed since --since (a duration back
from now such as 24h or 7d, or an RFC 3339 time), worst first; suppressed
alerts are left out. The read is audited.

--format tsv (the default) prints one line per (user, patient) pair, tab
separated, without a header: the user (Practitioner/<id>), the patient
(Patient/<id>), the category, the score (0 to 1) and the explanation. An
alert about a user's behaviour (bulk reads, browsing) has a line for each
patient it covers; an alert about no patient (most attacks) has an empty
patient column. --format json prints the alerts with their evidence.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.format != "tsv" && o.format != "json" {
				return fmt.Errorf("%w: --format is tsv or json", errUsage)
			}
			since, err := alerts.ParseSince(o.since, time.Now())
			if err != nil {
				return fmt.Errorf("--since %q: a duration (24h, 7d) or an RFC 3339 time", o.since)
			}
			var as []alerts.JSON
			if o.url != "" {
				as, err = e.alertsRemote(cmd.Context(), o)
			} else {
				as, err = e.alertsOffline(cmd, o, since)
			}
			if err != nil {
				return err
			}
			if o.format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"alerts": as})
			}
			return alerts.WriteTSV(e.stdout, as)
		},
	}
	o.remoteOptions.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "only alerts created or changed since then: a duration (24h, 7d) or an RFC 3339 time")
	f.StringVar(&o.format, "format", "tsv", "tsv or json")
	f.StringVar(&o.status, "status", "", "only alerts of this status: open, confirmed, false-positive, needs-interview")
	f.Float64Var(&o.minScore, "min-score", 0, "only alerts scoring at least this (0 to 1)")
	f.IntVar(&o.limit, "limit", 0, "at most this many alerts (default and maximum 10000)")
	return cmd
}

func (e *env) alertsOffline(cmd *cobra.Command, o alertsOptions, since time.Time) ([]alerts.JSON, error) {
	a, err := e.openApp(cmd)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	svc, err := a.Monitor()
	if err != nil {
		return nil, err
	}
	list, err := svc.List(cmd.Context(), alerts.Offline(), alerts.Filter{Since: since, Status: o.status, MinScore: o.minScore, Limit: o.limit})
	if err != nil {
		return nil, err
	}
	out := make([]alerts.JSON, 0, len(list))
	for _, x := range list {
		out = append(out, x.JSON())
	}
	return out, nil
}

func (e *env) alertsRemote(ctx context.Context, o alertsOptions) ([]alerts.JSON, error) {
	client, tok, err := e.remoteClient(o.tokenFile, o.caCert, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if o.since != "" {
		q.Set("since", o.since)
	}
	if o.status != "" {
		q.Set("status", o.status)
	}
	if o.minScore > 0 {
		q.Set("min_score", fmt.Sprint(o.minScore))
	}
	if o.limit > 0 {
		q.Set("limit", fmt.Sprint(o.limit))
	}
	endpoint := strings.TrimSuffix(o.url, "/") + "/admin/api/monitor/alerts?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, e.tlsHint(fmt.Errorf("asking %s: %w", o.url, err), "--cacert")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server answered %s: %s", resp.Status, apiErrorText(body))
	}
	var out struct {
		Alerts []alerts.JSON `json:"alerts"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	return out.Alerts, nil
}
