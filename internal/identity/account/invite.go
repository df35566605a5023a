package account

import (
	"net/url"
	"strings"
)

// EnrolmentPage is the browser page where an invited account sets its
// first password with its enrolment secret (internal/webui/signin,
// ADR 0034). POST /auth/enrol is the same step as a JSON API.
const EnrolmentPage = "/enrol"

// InvitationLink returns the link an invitation gives: base (the
// server's public base URL, such as https://phivault.example) with
// [EnrolmentPage], and the username and secret in the URL fragment.
// Browsers never send a fragment to the server, so the secret is in no
// access log and no Referer header; the page's script moves it into
// the form. The link is as secret as the enrolment secret itself.
func InvitationLink(base, username, secret string) string {
	frag := url.Values{"username": {username}, "token": {secret}}.Encode()
	return strings.TrimRight(base, "/") + EnrolmentPage + "#" + frag
}
