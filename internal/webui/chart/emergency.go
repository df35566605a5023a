package chart

import (
	"context"
	"fmt"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/webui/site"
)

// emergencyUntil is when the viewer's break-the-glass grant on patient
// id ends, as "15:04 UTC", or "" without an unexpired grant. The chart
// shows it in a banner so a clinician never reads a chart under
// emergency access without knowing it is recorded and reviewed. The
// grant store is read on every chart view, so the banner goes with the
// grant (and with it the access itself).
func (u *UI) emergencyUntil(ctx context.Context, v *site.Viewer, id string) (string, error) {
	if u.authz == nil {
		return "", nil
	}
	g, ok, err := u.authz.ActiveGrant(ctx, v.P.ID, ident.PatientRef(id).String())
	if err != nil {
		return "", fmt.Errorf("loading emergency grants: %w", err)
	}
	if !ok {
		return "", nil
	}
	return g.Expires.UTC().Format("15:04") + " UTC", nil
}
