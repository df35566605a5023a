package console

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/webui/site"
)

// The audit log status page (auditor, security admin): the size of the
// tamper-evident log, its latest signed checkpoint, the key to verify
// checkpoints with, and the last full verification with its result.

type logView struct {
	Available    bool
	Status       site.AuditLogStatus
	Verification *Verification // nil: never run, or not available
	VerifyError  bool
}

func (u *UI) adminLog(w http.ResponseWriter, r *http.Request) error {
	var view logView
	if u.auditLog != nil {
		st, err := u.auditLog.TrustStatus(r.Context())
		if err != nil {
			return u.consoleErr(err)
		}
		view.Available, view.Status = true, st
	}
	if f := u.console.LastVerification; f != nil {
		v, err := f(r.Context())
		switch {
		case err == nil:
			view.Verification = &v
		case errors.Is(err, storage.ErrNotFound):
		default:
			u.log.ErrorContext(r.Context(), "console: last verification", slog.String("request_id", requestID(r)), slog.String("error", err.Error()))
			view.VerifyError = true
		}
	}
	u.site.Render(w, r, http.StatusOK, "admin-log", site.PageData{Title: "Audit log status", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}
