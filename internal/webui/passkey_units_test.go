package webui

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// TestEmergencyBannerTemplate: the chart shows the banner only while
// there is an unexpired grant (EmergencyUntil set by emergencyUntil).
func TestEmergencyBannerTemplate(t *testing.T) {
	u := bareUI(t)
	for _, until := range []string{"", "15:04 UTC"} {
		rec := httptest.NewRecorder()
		u.site.Render(rec, httptest.NewRequest("GET", "/patients/p", nil), 200, "chart", site.PageData{Title: "Chart", Data: &chartview.Chart{ID: "p", EmergencyUntil: until}})
		body := rec.Body.String()
		has := strings.Contains(body, `role="alert" id="emergency-banner"`) &&
			strings.Contains(body, "Emergency access until "+until+"</strong> — every view is recorded and will be reviewed.")
		if has != (until != "") {
			t.Errorf("EmergencyUntil %q: banner %v", until, has)
		}
	}
}
