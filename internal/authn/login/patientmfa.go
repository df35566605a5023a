package login

import (
	"context"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/identity"
)

// # Patients' second factor
//
// A workforce account always needs a second factor (HIPAA, DESIGN §6).
// A patient account signs in with its password alone unless:
//
//   - the patient added a second factor (from the UI's Security page,
//     [Service.AddSecondFactor]): from then on every sign-in asks for it,
//     as a workforce sign-in does; or
//   - the policy is [PatientMFARequired] (config auth.patient_mfa): the
//     first sign-in of a patient without one is an enrolment, as a new
//     staff account's is, and a password-only session started before the
//     policy changed is no longer accepted ([Service.NeedsSecondFactor]).

// PatientMFA is the policy for patient accounts' second factor.
type PatientMFA string

const (
	// PatientMFAOptional (the default): a patient may add a second
	// factor; once added, it is required at every sign-in.
	PatientMFAOptional PatientMFA = "optional"
	// PatientMFARequired: every patient account needs a second factor.
	PatientMFARequired PatientMFA = "required"
)

// Valid reports whether p is a known policy ("" counts as the default).
func (p PatientMFA) Valid() bool {
	return p == "" || p == PatientMFAOptional || p == PatientMFARequired
}

// secondFactor reports whether u's sign-in needs a second step.
func (s *Service) secondFactor(u identity.User) bool {
	return u.RequiresMFA() || u.MFAEnrolled || s.patientMFA == PatientMFARequired
}

// NeedsSecondFactor reports whether session principal p may not be
// served because it lacks a second factor its account needs: a
// workforce session without one ([RequiresMFA]), or, under
// [PatientMFARequired], any session signed in with a password alone.
func (s *Service) NeedsSecondFactor(p authn.Principal) bool {
	if RequiresMFA(p) {
		return true
	}
	return s.patientMFA == PatientMFARequired && p.Kind == authn.KindSession && !p.MFA
}

// AddSecondFactor starts the enrolment of a second factor for the
// account of session principal p, signed in with its password alone (a
// patient): it returns a [Result] with an enrolment challenge for
// [Service.EnrollTOTP] and [Service.ConfirmTOTP] (or the passkey
// enrolment) and the methods it accepts, the same steps as a first
// sign-in. Confirming starts a new session with the second
// factor and ends the account's other sessions. Errors:
// [ErrHasSecondFactor], [ErrInvalidChallenge] for a principal that is
// not a session, storage errors.
func (s *Service) AddSecondFactor(ctx context.Context, p authn.Principal) (Result, error) {
	if p.Kind != authn.KindSession || p.ID == "" {
		return Result{}, ErrInvalidChallenge
	}
	if p.MFA {
		return Result{}, ErrHasSecondFactor
	}
	u, err := s.users.ByID(ctx, p.ID)
	if errors.Is(err, identity.ErrNotFound) {
		return Result{}, ErrInvalidChallenge
	}
	if err != nil {
		return Result{}, fmt.Errorf("adding a second factor: %w", err)
	}
	if u.Disabled {
		return Result{}, ErrInvalidChallenge
	}
	if u.MFAEnrolled {
		return Result{}, ErrHasSecondFactor
	}
	tok, err := s.sealChallenge(challenge{User: u.ID, Step: stepEnroll, Version: u.Updated.UnixMicro(), Expires: s.now().Add(ChallengeTTL).Unix()})
	if err != nil {
		return Result{}, err
	}
	methods, err := s.methods(ctx, u.ID, stepEnroll)
	if err != nil {
		return Result{}, err
	}
	return Result{MFARequired: true, EnrollmentRequired: true, Challenge: tok, Methods: methods}, nil
}
