package signin

import (
	"errors"
	"net/http"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/webui/site"
)

// addSecondFactor is the Security page's "Add a second step" for an
// account signed in with its password alone (a patient, while the policy
// leaves it optional): the login service issues an enrolment challenge
// for the session's account, and the browser goes through the same
// enrolment pages as a first staff sign-in (/login/enrol: authenticator
// app or passkey, then the recovery codes). Confirming starts a new
// session with the second factor and ends the others.
func (u *UI) addSecondFactor(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	res, err := u.login.AddSecondFactor(r.Context(), v.P)
	if errors.Is(err, login.ErrHasSecondFactor) {
		return site.Redirect(w, r, "/security")
	}
	if errors.Is(err, login.ErrInvalidChallenge) {
		return site.PageErr(http.StatusForbidden, "Not available", "A second step can be added only from a signed-in session of your account.", err)
	}
	if err != nil {
		return err
	}
	setChallenge(w, res.Challenge)
	setMethods(w, res.Methods)
	return site.Redirect(w, r, "/login/enrol")
}
