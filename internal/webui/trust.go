package webui

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/site"
)

// The public trust page (/trust, no sign-in): a plain-language privacy
// notice and live facts about the safeguards. Facts are aggregates only
// (counts, kinds of key), never an account, a patient or a path, and
// they are computed at most once per trustTTL: the page is public, so
// its cost must not scale with how often it is asked for.

// trustTTL is how long computed facts are reused.
const trustTTL = time.Minute

// maxTrustUsers bounds the account scan for the MFA share.
const maxTrustUsers = 100_000

// encryptionFacts are the encryption facts of the trust page.
type encryptionFacts struct {
	Available     bool
	KEKSource     string // plain words: a key file, or an external key service
	AEAD          string
	PatientKeys   int
	ErasedRecords int
}

type mfaFacts struct {
	Available bool
	Workforce int
	Enrolled  int
	Percent   string
}

type auditFacts struct {
	Available     bool
	Error         bool
	Status        AuditLogStatus
	SinceVerified string
}

type trustView struct {
	Encryption encryptionFacts
	MFA        mfaFacts
	Audit      auditFacts
	Computed   time.Time
}

type trustCache struct {
	mu   sync.Mutex
	at   time.Time
	view trustView
}

func (u *UI) trustPage(w http.ResponseWriter, r *http.Request) error {
	tv := u.trustFacts(r.Context())
	var v *site.Viewer
	if got, err := u.site.Authenticate(r); err == nil {
		v = got
	}
	u.site.Render(w, r, http.StatusOK, "trust", site.PageData{Title: "How we protect your health information", Viewer: v, Nav: "trust", Data: tv})
	return nil
}

// trustFacts returns the cached facts, recomputing them when stale.
// Concurrent callers wait for one computation.
func (u *UI) trustFacts(ctx context.Context) trustView {
	c := u.trust
	c.mu.Lock()
	defer c.mu.Unlock()
	now := u.now()
	if !c.at.IsZero() && now.Sub(c.at) < trustTTL {
		tv := c.view
		tv.Audit = u.auditFacts(ctx, now) // cheap, and should be fresh
		return tv
	}
	tv := trustView{Computed: now, Encryption: u.encryptionFacts(ctx), MFA: u.mfaFacts(ctx)}
	c.view, c.at = tv, now
	tv.Audit = u.auditFacts(ctx, now)
	return tv
}

func (u *UI) encryptionFacts(ctx context.Context) encryptionFacts {
	if u.keys == nil || u.scanner == nil {
		return encryptionFacts{}
	}
	f := encryptionFacts{Available: true, AEAD: "AES-256-GCM (Google Tink), with the record's type, id, version and patient bound to each encryption"}
	desc := u.keys.KEK().Description()
	switch {
	case strings.HasPrefix(desc, "hcvault://"):
		f.KEKSource = "an external key management service (HashiCorp Vault), separate from the database"
	default:
		f.KEKSource = "a key file kept outside the database"
	}
	err := u.scanner.ScanKeys(ctx, func(r storage.KeyRecord) error {
		switch {
		case r.Shredded:
			f.ErasedRecords++
		case strings.HasPrefix(string(r.Owner), ident.PatientPrefix):
			f.PatientKeys++
		}
		return nil
	})
	if err != nil {
		u.log.ErrorContext(ctx, "trust page: scanning keys", slog.String("request_id", web.RequestID(ctx)), slog.String("error", err.Error()))
		return encryptionFacts{}
	}
	return f
}

func (u *UI) mfaFacts(ctx context.Context) mfaFacts {
	var f mfaFacts
	after := ""
	for seen := 0; seen < maxTrustUsers; {
		us, err := u.users.List(ctx, after, identity.MaxPage)
		if err != nil {
			u.log.ErrorContext(ctx, "trust page: listing accounts", slog.String("request_id", web.RequestID(ctx)), slog.String("error", err.Error()))
			return mfaFacts{}
		}
		for _, x := range us {
			if x.Disabled || !x.RequiresMFA() {
				continue
			}
			f.Workforce++
			if x.MFAEnrolled {
				f.Enrolled++
			}
		}
		seen += len(us)
		if len(us) < identity.MaxPage {
			break
		}
		after = us[len(us)-1].Username
	}
	f.Available = true
	if f.Workforce > 0 {
		f.Percent = fmt.Sprintf("%.0f%%", 100*float64(f.Enrolled)/float64(f.Workforce))
	}
	return f
}

func (u *UI) auditFacts(ctx context.Context, now time.Time) auditFacts {
	if u.auditLog == nil {
		return auditFacts{}
	}
	st, err := u.auditLog.TrustStatus(ctx)
	if err != nil {
		u.log.ErrorContext(ctx, "trust page: audit log status", slog.String("request_id", web.RequestID(ctx)), slog.String("error", err.Error()))
		return auditFacts{Error: true}
	}
	f := auditFacts{Available: true, Status: st}
	if !st.LastVerification.IsZero() {
		f.SinceVerified = now.Sub(st.LastVerification).Round(time.Minute).String()
	}
	return f
}
