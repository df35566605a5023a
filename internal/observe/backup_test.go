package observe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/observe"
)

// The backup gauges carry the figures read at scrape time, are absent
// when never reached, and absent when the read fails.
func TestBackupGauges(t *testing.T) {
	var f observe.BackupFigures
	var fail error
	m := observe.New(observe.Options{})
	if err := m.RegisterBackup(func(context.Context) (observe.BackupFigures, error) { return f, fail }); err != nil {
		t.Fatal(err)
	}
	gauges := func() map[string]float64 {
		t.Helper()
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, fam := range fams {
			for _, mt := range fam.GetMetric() {
				if g := mt.GetGauge(); g != nil {
					out[fam.GetName()] = g.GetValue()
				}
			}
		}
		return out
	}
	names := []string{"phivault_backup_last_success_timestamp_seconds", "phivault_backup_drill_last_success_timestamp_seconds", "phivault_backup_drill_last_recovery_seconds"}
	g := gauges()
	for _, n := range names {
		if _, ok := g[n]; ok {
			t.Fatalf("%s exported before any backup", n)
		}
	}
	f = observe.BackupFigures{LastBackup: time.Unix(1765000000, 500e6), LastDrill: time.Unix(1765003600, 0), LastDrillRecovery: 2500 * time.Millisecond}
	g = gauges()
	if g[names[0]] != 1765000000.5 || g[names[1]] != 1765003600 || g[names[2]] != 2.5 {
		t.Fatalf("gauges %v", g)
	}
	fail = errors.New("database down")
	g = gauges()
	if _, ok := g[names[0]]; ok {
		t.Fatal("a failed read still exported a timestamp")
	}
}
