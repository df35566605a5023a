package signin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/site"
)

// Onboarding (ADR 0034): an invited account sets its first password at
// /enrol with its username and the one-time enrolment secret of the
// invitation, then signs in at /login, where the first sign-in sets up
// the second step (/login/enrol).
//
// The invitation link is /enrol#username=…&token=…: a URL fragment is
// never sent to a server, so the secret is in no access log, proxy log
// or Referer header. static/onboard.js copies the fragment into the
// form and removes it from the address bar and the history; without
// scripts the person types or pastes the secret into the same field.
// The form POSTs to /enrol (pre-session double-submit CSRF) and calls
// the account service /auth/enrol uses, charging the same per-address
// limiter, so the page gives no more attempts than the JSON API.
// GET /auth/enrol, the address older invitations named, is sent here
// (the browser keeps the fragment across the redirect); POST
// /auth/enrol stays the JSON API.

// Enroller sets a new account's first password with its enrolment
// secret (account.Service.Enrol, the service behind POST /auth/enrol).
// Password policy failures are password.PolicyError errors;
// account.ErrEnrolmentRefused is every failure of the secret (answered
// with one message); any other error (password.ErrBusy,
// storage.ErrUnavailable) changed nothing and means "try again".
type Enroller interface {
	Enrol(ctx context.Context, actor audit.Agent, username, secret, pw string) (identity.User, error)
}

type onboardView struct {
	Error    string
	Username string
	// Token is the code sent, kept in the form after a refused password
	// (the answer to the POST, no-store), so the person need not find
	// the link again; empty after a refused code.
	Token    string
	Min, Max int // the password length policy (password.MinRunes, MaxRunes)
}

func newOnboardView(username, token, msg string) onboardView {
	return onboardView{Error: msg, Username: username, Token: token, Min: password.MinRunes, Max: password.MaxRunes}
}

const onboardTitle = "Set your password"

// maxTokenField is the longest code shown back in the form (the field's
// maxlength; a secret is 47 characters).
const maxTokenField = 128

func (u *UI) onboardForm(w http.ResponseWriter, r *http.Request) error {
	if u.enrol == nil {
		return errNoEnrolment
	}
	tok, err := u.site.PreSessionToken(w, r)
	if err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "onboard", site.PageData{Title: onboardTitle, CSRF: tok, Data: newOnboardView("", "", "")})
	return nil
}

// errNoEnrolment is the page of a server without the account service.
var errNoEnrolment = site.PageErr(http.StatusServiceUnavailable, "Not available",
	"Setting a password is not available on this server right now. Ask your administrator.", errors.New("no account service for enrolment"))

// onboardRefused is the one message for every failure of the secret
// (unknown, expired, used, another user's, disabled account): it says
// nothing about whether the account exists.
const onboardRefused = "The username or the invitation code is not right, or the code has expired or was already used. Check both, or ask your administrator for a new invitation."

func (u *UI) onboardSubmit(w http.ResponseWriter, r *http.Request) error {
	if u.enrol == nil {
		return errNoEnrolment
	}
	csrf := r.PostForm.Get("csrf")
	username := r.PostForm.Get("username")
	secret, pw := r.PostForm.Get("token"), r.PostForm.Get("password")
	keep := secret // cleared when the code itself is refused
	if len(keep) > maxTokenField {
		keep = ""
	}
	show := func(status int, msg string) error {
		u.site.Render(w, r, status, "onboard", site.PageData{Title: onboardTitle, CSRF: csrf, Data: newOnboardView(username, keep, msg)})
		return nil
	}
	addr := web.ClientAddr(r)
	if ok, retry := u.enrolLimiter.Allow(addr); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Round(time.Second)/time.Second)+1))
		return show(http.StatusTooManyRequests, fmt.Sprintf("There were too many attempts from your network. Wait %s and try again.", retry.Round(time.Second)+time.Second))
	}
	if pw != r.PostForm.Get("password2") {
		return show(http.StatusBadRequest, "The two passwords are not the same. Type the new password twice.")
	}
	ag := audit.Agent{Client: "enrol"}
	if addr.IsValid() {
		ag.Address = addr.String()
	}
	_, err := u.enrol.Enrol(r.Context(), ag, username, secret, pw)
	switch {
	case err == nil:
		return site.Redirect(w, r, "/login?enrolled=1")
	case password.PolicyError(err) != nil:
		return show(http.StatusBadRequest, policyMessage(err))
	case errors.Is(err, account.ErrEnrolmentRefused):
		keep = ""
		return show(http.StatusBadRequest, onboardRefused)
	}
	// password.ErrBusy, storage.ErrUnavailable or worse: nothing was
	// changed and the secret is not used up, so the person may retry.
	web.NoteBackendFailure(r.Context(), err)
	u.log.WarnContext(r.Context(), "ui enrolment failed", slog.String("request_id", web.RequestID(r.Context())), slog.String("error", err.Error()))
	w.Header().Set("Retry-After", "1")
	return show(http.StatusServiceUnavailable, "The server could not set your password just now; nothing was changed. Try again in a moment.")
}

// policyMessage puts a password policy failure in a sentence.
func policyMessage(err error) string {
	switch {
	case errors.Is(err, password.ErrTooShort):
		return fmt.Sprintf("This password is too short: use at least %d characters. A few unrelated words make a long password that is easy to remember.", password.MinRunes)
	case errors.Is(err, password.ErrTooLong):
		return fmt.Sprintf("This password is too long: use at most %d characters.", password.MaxRunes)
	case errors.Is(err, password.ErrCommon):
		return "This password is on the lists of common or breached passwords that attackers try first. Choose another one."
	case errors.Is(err, password.ErrContext):
		return "This password contains your username, your name or the word phivault. Choose one without them."
	case errors.Is(err, password.ErrInvalidUTF8):
		return "This password contains characters that are not text. Type it again."
	}
	return "This password cannot be used. Choose another one."
}

// legacyEnrol sends a browser that opens /auth/enrol (the JSON API's
// address, named by older invitations) to the page; the fragment that
// carries the invitation stays with the browser across the redirect.
func (u *UI) legacyEnrol(w http.ResponseWriter, r *http.Request) error {
	return site.Redirect(w, r, "/enrol")
}
