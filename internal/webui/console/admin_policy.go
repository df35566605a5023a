package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/webui/site"
)

// Policy and keys pages (security admin), read-only: the Cedar policy
// set in force with its source text and version history, and the key
// status "phivault keys status" prints. Nothing here changes state.

// PolicyVersion is one recorded version of the policy set
// (sqldb.PolicyVersion).
type PolicyVersion struct {
	Seq     int64
	Hash    string
	Source  string
	Created time.Time
}

// maxPolicyVersions bounds the history shown.
const maxPolicyVersions = 100

type policyFile struct {
	Name, Text string
}

type policyView struct {
	Available bool
	Hash      string
	Source    string
	Installed time.Time // when the version in force was first recorded; zero: unknown
	IDs       []string
	Files     []policyFile
	Versions  []PolicyVersion
	History   bool // false: the history is not available
}

func (u *UI) adminPolicy(w http.ResponseWriter, r *http.Request) error {
	var view policyView
	if u.authz != nil {
		p := u.authz.Policies()
		view.Available, view.Hash, view.Source, view.IDs = true, p.Hash(), p.Source(), p.IDs()
		for name, b := range p.Text() {
			view.Files = append(view.Files, policyFile{Name: name, Text: string(b)})
		}
		slices.SortFunc(view.Files, func(a, b policyFile) int { return strings.Compare(a.Name, b.Name) })
	}
	if f := u.console.PolicyVersions; f != nil {
		vs, err := f(r.Context(), maxPolicyVersions)
		switch {
		case err == nil:
			view.Versions, view.History = vs, true
			// The version in force was installed when its hash was last
			// recorded after a different one.
			for _, v := range vs { // newest first
				if v.Hash != view.Hash {
					break
				}
				view.Installed = v.Created
			}
		case errors.Is(err, storage.ErrNotFound):
			view.History = true
		default:
			u.log.ErrorContext(r.Context(), "console: policy versions", slog.String("request_id", requestID(r)), slog.String("error", err.Error()))
		}
	}
	u.site.Render(w, r, http.StatusOK, "admin-policy", site.PageData{Title: "Authorization policy", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}

type kekRow struct {
	ID      uint32
	Keys    int
	Primary bool
}

type keysView struct {
	Available                       bool
	KEK                             string
	PrimaryID                       uint32
	Patients, Org, System, Shredded int
	ByKEK                           []kekRow
	NeedsRotate                     bool
}

// keyStatus counts the data keys as "phivault keys status" does.
func (u *UI) keyStatus(ctx context.Context) (keysView, error) {
	if u.keys == nil || u.scanner == nil {
		return keysView{}, nil
	}
	kek := u.keys.KEK()
	v := keysView{Available: true, KEK: kek.Description(), PrimaryID: kek.PrimaryID()}
	by := map[uint32]int{}
	err := u.scanner.ScanKeys(ctx, func(r storage.KeyRecord) error {
		switch {
		case r.Shredded:
			v.Shredded++
			return nil
		case strings.HasPrefix(string(r.Owner), ident.SystemPrefix):
			v.System++
		case strings.HasPrefix(string(r.Owner), ident.PatientPrefix):
			v.Patients++
		default:
			v.Org++
		}
		by[r.KEKID]++
		return nil
	})
	if err != nil {
		return keysView{}, err
	}
	for id, n := range by {
		v.ByKEK = append(v.ByKEK, kekRow{ID: id, Keys: n, Primary: id == v.PrimaryID})
	}
	slices.SortFunc(v.ByKEK, func(a, b kekRow) int { return int(int64(a.ID) - int64(b.ID)) })
	v.NeedsRotate = len(v.ByKEK) > 1
	return v, nil
}

func (u *UI) adminKeys(w http.ResponseWriter, r *http.Request) error {
	view, err := u.keyStatus(r.Context())
	if err != nil {
		return u.consoleErr(err)
	}
	u.site.Render(w, r, http.StatusOK, "admin-keys", site.PageData{Title: "Encryption keys", Viewer: site.ViewerFrom(r.Context()), Nav: "admin", Data: view})
	return nil
}
