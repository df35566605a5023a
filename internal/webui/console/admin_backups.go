package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/webui/site"
)

// The backups page (security admin, issue 17): the last backup and the
// last passed restore drill with their figures, warnings when either is
// overdue (none succeeded within twice its schedule) or failed, and the
// live evidence of the contingency plan standard, §164.308(a)(7). It
// reads records only: no backup, key or credential reaches the page
// (destinations are shown as the store names itself: endpoint, bucket
// and prefix, or a directory).

type backupView struct {
	Status   schedule.Status
	Evidence []schedule.Control
	// Sizes and durations, formatted.
	BackupSize      string
	Interval        string
	DrillInterval   string
	RecoveryTime    string
	RecoveryPoint   string
	LastRunFailed   bool
	LastDrillFailed bool
}

func (u *UI) adminBackups(w http.ResponseWriter, r *http.Request) error {
	if u.console.Backups == nil {
		return unavailable("Backup status")
	}
	st, err := u.console.Backups(r.Context())
	if err != nil {
		return u.consoleErr(err)
	}
	v := backupView{Status: st, Evidence: schedule.Evidence(st), Interval: duration(st.Interval), DrillInterval: duration(st.DrillInterval)}
	if b := st.LastBackup; b != nil {
		v.BackupSize = bytesText(b.Size)
	}
	if d := st.LastGoodDrill; d != nil {
		v.RecoveryTime, v.RecoveryPoint = duration(d.RecoveryTime), duration(d.RecoveryPoint)
	}
	v.LastRunFailed = st.LastRun != nil && st.LastRun.Outcome != storage.BackupSuccess
	v.LastDrillFailed = st.LastDrill != nil && st.LastDrill.Outcome != storage.BackupSuccess
	u.site.Render(w, r, http.StatusOK, "admin-backups", site.PageData{Title: "Backups", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: v})
	return nil
}

// bytesText is n in binary units ("1.5 GiB").
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, [...]string{"", "KiB", "MiB", "GiB", "TiB"}[i])
}

// duration is d rounded for reading ("1.2s", "6h0m0s"); "" for 0.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
