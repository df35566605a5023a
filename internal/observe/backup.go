package observe

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BackupFigures are the backup state a scrape exports: zero times mean
// "never" (the metric is then left out, so an alert on absence fires).
type BackupFigures struct {
	LastBackup        time.Time     // finish of the newest successful backup
	LastDrill         time.Time     // finish of the newest passed drill
	LastDrillRecovery time.Duration // its restore time
}

var (
	backupLastDesc = prometheus.NewDesc(namespace+"_backup_last_success_timestamp_seconds",
		"Unix time the newest successful backup finished.", nil, nil)
	drillLastDesc = prometheus.NewDesc(namespace+"_backup_drill_last_success_timestamp_seconds",
		"Unix time the newest passed restore drill finished.", nil, nil)
	drillRecoveryDesc = prometheus.NewDesc(namespace+"_backup_drill_last_recovery_seconds",
		"Restore time measured by the newest passed restore drill.", nil, nil)
)

// RegisterBackup exports the backup gauges, read by read at each scrape
// within scrapeTimeout from the database (so every process of a fleet
// reports the same, whichever runs the schedule). A failed read leaves
// them out of that scrape.
func (m *Metrics) RegisterBackup(read func(ctx context.Context) (BackupFigures, error)) error {
	if err := m.reg.Register(backupCollector{read: read}); err != nil {
		return fmt.Errorf("registering the backup metrics: %w", err)
	}
	return nil
}

type backupCollector struct {
	read func(ctx context.Context) (BackupFigures, error)
}

func (c backupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backupLastDesc
	ch <- drillLastDesc
	ch <- drillRecoveryDesc
}

func (c backupCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	f, err := c.read(ctx)
	if err != nil {
		return
	}
	if !f.LastBackup.IsZero() {
		ch <- prometheus.MustNewConstMetric(backupLastDesc, prometheus.GaugeValue, float64(f.LastBackup.UnixMilli())/1000)
	}
	if !f.LastDrill.IsZero() {
		ch <- prometheus.MustNewConstMetric(drillLastDesc, prometheus.GaugeValue, float64(f.LastDrill.UnixMilli())/1000)
		ch <- prometheus.MustNewConstMetric(drillRecoveryDesc, prometheus.GaugeValue, f.LastDrillRecovery.Seconds())
	}
}
