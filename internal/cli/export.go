package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
)

type exportOptions struct {
	deidentify bool
	out        string
	types      []string
	dateShift  int
	quiet      bool
}

func (e *env) exportCmd() *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export --deidentify --out DIR",
		Short: "Write a de-identified (HIPAA Safe Harbor) copy of every current resource as NDJSON, for research",
		Long: `export --deidentify reads every current resource of the data directory with
the key file, de-identifies it by the HIPAA Safe Harbor method (45 CFR
164.514(b)(2); docs/deidentification.md) and writes one NDJSON file per
resource type into DIR (Patient.ndjson, Observation.ndjson, ...), with a
progress bar. Ids and references become pseudonyms under a key made for this
export and never stored, so two exports cannot be linked. Names, contact
details, addresses below the state (ZIP codes to 3 digits), dates (to the
year), free text and anything not understood are removed; the counts per
reason are printed. The export is audited (purpose HRESCH, every patient
named) before the files appear in DIR. Safe beside a running server.

--date-shift DAYS keeps full dates moved by a per-patient offset within
+-DAYS instead of keeping only the year: that is NOT Safe Harbor and needs an
expert determination or a data use agreement.

Without --deidentify the command refuses: identified bulk data goes through
the server's $export with a SMART backend client, where each access is
authorized and audited per client.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !o.deidentify {
				return errors.New("export writes de-identified data only: add --deidentify (identified bulk data goes through the server's $export with a SMART backend client)")
			}
			if o.out == "" {
				return errors.New("export: --out DIR is required")
			}
			// Every flag is checked before anything is opened, created
			// or read, with a plain message.
			if o.dateShift < 0 || o.dateShift > app.MaxDateShiftDays {
				return fmt.Errorf("export: --date-shift must be a number of days between 1 and %d (0: keep only the year)", app.MaxDateShiftDays)
			}
			if err := app.CheckDeidentifiedExport(app.DeidentifiedExport{Types: o.types, DateShiftDays: o.dateShift}); err != nil {
				return fmt.Errorf("export: --type: %s", strings.TrimPrefix(err.Error(), app.ErrExportRequest.Error()+": "))
			}
			return e.runExport(cmd, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.deidentify, "deidentify", false, "de-identify by the HIPAA Safe Harbor method (required)")
	f.StringVar(&o.out, "out", "", "directory to write the NDJSON files into (created if missing; must hold no .ndjson file)")
	f.StringSliceVar(&o.types, "type", nil, "resource types to export, comma-separated (default: all)")
	f.IntVar(&o.dateShift, "date-shift", 0, "shift full dates per patient within +-DAYS instead of keeping the year (not Safe Harbor)")
	f.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	return cmd
}

func (e *env) runExport(cmd *cobra.Command, o exportOptions) error {
	if err := os.MkdirAll(o.out, 0o700); err != nil {
		return fmt.Errorf("export: creating %s: %w", o.out, err)
	}
	if old, _ := filepath.Glob(filepath.Join(o.out, "*.ndjson")); len(old) > 0 {
		return fmt.Errorf("export: %s already holds NDJSON files; choose an empty directory", o.out)
	}
	// Files are written into a hidden directory first and moved into
	// place only after the export is audited.
	tmp, err := os.MkdirTemp(o.out, ".export-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)
	a, err := e.openApp(cmd)
	if err != nil {
		return err
	}
	defer a.Close()

	w := &ndjsonFiles{dir: tmp, files: map[string]*ndjsonFile{}}
	defer w.close()
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("exporting"),
		progressbar.OptionSetVisibility(!o.quiet),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("resources"),
		progressbar.OptionShowIts(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
	)
	res, err := a.ExportDeidentified(cmd.Context(), osOperator(), app.DeidentifiedExport{
		Types:         o.types,
		DateShiftDays: o.dateShift,
		Write:         w.write,
		Progress:      func(n int64) { _ = bar.Set64(n) },
	})
	_ = bar.Finish()
	if err == nil {
		err = w.close()
	}
	if err != nil {
		return err
	}
	names, err := w.publish(o.out)
	if err != nil {
		return err
	}
	e.printExportReport(res, names)
	return nil
}

// ndjsonFiles writes one NDJSON file per resource type.
type ndjsonFiles struct {
	dir   string
	files map[string]*ndjsonFile
}

type ndjsonFile struct {
	f *os.File
	w *bufio.Writer
	n int
}

func (w *ndjsonFiles) write(typ string, body []byte) error {
	nf := w.files[typ]
	if nf == nil {
		// typ is a resource type the store holds (an R4 type name),
		// so it is safe as a file name.
		f, err := os.OpenFile(filepath.Join(w.dir, typ+".ndjson"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		nf = &ndjsonFile{f: f, w: bufio.NewWriterSize(f, 1<<16)}
		w.files[typ] = nf
	}
	if _, err := nf.w.Write(body); err != nil {
		return fmt.Errorf("export: writing %s.ndjson: %w", typ, err)
	}
	if err := nf.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("export: writing %s.ndjson: %w", typ, err)
	}
	nf.n++
	return nil
}

// close flushes, syncs and closes every file (once).
func (w *ndjsonFiles) close() error {
	var errs []error
	for typ, nf := range w.files {
		if nf.f == nil {
			continue
		}
		if err := nf.w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("export: writing %s.ndjson: %w", typ, err))
		}
		if err := nf.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("export: writing %s.ndjson: %w", typ, err))
		}
		if err := nf.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("export: writing %s.ndjson: %w", typ, err))
		}
		nf.f = nil
	}
	return errors.Join(errs...)
}

// publish moves the files into dir and returns their names, sorted.
func (w *ndjsonFiles) publish(dir string) ([]string, error) {
	var names []string
	for typ := range w.files {
		names = append(names, typ+".ndjson")
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.Rename(filepath.Join(w.dir, n), filepath.Join(dir, n)); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	return names, nil
}

// printExportReport prints the counts: resources per type, resources
// left out, and elements removed or generalised per reason. No value.
func (e *env) printExportReport(res app.DeidentifiedResult, names []string) {
	r := res.Report
	fmt.Fprintf(e.stdout, "%-28s %10s %10s\n", "resource type", "written", "left out")
	types := map[string]bool{}
	for t := range r.Written {
		types[t] = true
	}
	for t := range r.Dropped {
		types[t] = true
	}
	var ts []string
	for t := range types {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	written, dropped := 0, 0
	for _, t := range ts {
		d := 0
		for _, n := range r.Dropped[t] {
			d += n
		}
		fmt.Fprintf(e.stdout, "%-28s %10d %10d\n", t, r.Written[t], d)
		written += r.Written[t]
		dropped += d
	}
	reasons := map[string]int{}
	for _, m := range r.Removed {
		for k, n := range m {
			reasons[k] += n
		}
	}
	for _, m := range r.Dropped {
		for k, n := range m {
			reasons["resource left out: "+k] += n
		}
	}
	var ks []string
	for k := range reasons {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	fmt.Fprintln(e.stdout, "\nelements removed or generalised")
	for _, k := range ks {
		fmt.Fprintf(e.stdout, "  %-72s %10d\n", k, reasons[k])
	}
	fmt.Fprintf(e.stdout, "\n%d resources of %d patients read, %d written, %d left out: %s\n",
		res.Read, res.Patients, written, dropped, strings.Join(names, ", "))
}
