package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/cli"
)

// TestImportFailingBundleAmongMany: with many patient bundles in flight
// (committed together by the writer), one bundle that the server refuses
// fails the import with that file's name, every bundle committed before
// it stays whole, and importing again once it is fixed stores the rest:
// "N new, M already present" adds up to every entry, nothing twice.
func TestImportFailingBundleAmongMany(t *testing.T) {
	src := filepath.Join(t.TempDir(), "synth")
	secMustRun(t, "synth", "--patients", "24", "--seed", "7", "--out", src)
	bad := filepath.Join(src, "0000013-patient.json")
	orig, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	// An Observation whose status is not a code of its value set: the
	// transaction is refused whole.
	broken := bytes.Replace(orig, []byte(`"status":"final"`), []byte(`"status":"not-a-status"`), 1)
	if bytes.Equal(broken, orig) {
		t.Fatal("no Observation status to break in the bundle")
	}
	if err := os.WriteFile(bad, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	dir, _ := secInit(t)
	r := secRun(t, "import", "--quiet", "--workers", "16", "--data", dir, src)
	if r.code == 0 {
		t.Fatalf("import with a refused bundle succeeded:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "0000013-patient.json") {
		t.Errorf("the error does not name the refused bundle:\n%s", secTail(r.stderr, 2000))
	}
	if err := os.WriteFile(bad, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	r = secMustRun(t, "import", "--quiet", "--workers", "16", "--data", dir, src)
	created, present := secNewPresent(t, r.stdout)
	want := 0
	for _, n := range secInputCounts(t, src) {
		want += n
	}
	if created+present != want {
		t.Errorf("second import: %d new + %d present, want %d entries in all", created, present, want)
	}
	if created == 0 {
		t.Errorf("second import stored nothing new; the refused bundle at least was not stored before")
	}
	// A third import stores nothing: every bundle is stored once.
	r = secMustRun(t, "import", "--quiet", "--data", dir, src)
	if created, present := secNewPresent(t, r.stdout); created != 0 || present != want {
		t.Errorf("third import: %d new, %d present; want 0 new, %d present", created, present, want)
	}
	a := secOpenApp(t, dir)
	secAssertCounts(t, a, secInputCounts(t, src))
}

// BenchmarkImport imports synthetic patients into a fresh SQLite data
// directory through the CLI, as "phivault import" does; it reports
// resources/s. The directory's creation is not timed.
//
//	go test ./internal/cli -run '^$' -bench BenchmarkImport -benchtime 3x
func BenchmarkImport(b *testing.B) {
	src := filepath.Join(b.TempDir(), "synth")
	run := func(args ...string) string {
		var out, errb bytes.Buffer
		if code := cli.Main(b.Context(), args, strings.NewReader(""), &out, &errb); code != 0 {
			b.Fatalf("phivault %s: exit %d\n%s", strings.Join(args, " "), code, secTail(errb.String(), 2000))
		}
		return out.String()
	}
	run("synth", "--patients", "60", "--seed", "1", "--out", src)
	resources := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), fmt.Sprintf("data%d", i))
		run("init", "--data", dir)
		b.StartTimer()
		out := run("import", "--quiet", "--data", dir, src)
		b.StopTimer()
		var created, present int
		for _, l := range strings.Split(out, "\n") {
			if _, err := fmt.Sscanf(l, "%d new, %d already present", &created, &present); err == nil {
				break
			}
		}
		resources += created
		b.StartTimer()
	}
	b.ReportMetric(float64(resources)/b.Elapsed().Seconds(), "resources/s")
}
