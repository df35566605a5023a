package config

import "fmt"

// Auth configures sign-in policy.
type Auth struct {
	// PatientMFA is the policy for patient accounts' second factor:
	// "optional" (the default, also when empty): a patient may add one
	// on the web UI's Security page and is asked for it at every sign-in
	// from then on; "required": every patient account needs one, so a
	// patient without one enrols at the next sign-in, and password-only
	// sessions of patients are no longer accepted. Workforce accounts
	// always need a second factor. Env: PHIVAULT_PATIENT_MFA.
	PatientMFA string `json:"patient_mfa,omitempty"`
}

// Values of [Auth.PatientMFA].
const (
	PatientMFAOptional = "optional"
	PatientMFARequired = "required"
)

func (a *Auth) applyEnv(getenv func(string) string) {
	if v := getenv("PHIVAULT_PATIENT_MFA"); v != "" {
		a.PatientMFA = v
	}
}

func (a Auth) validate() error {
	switch a.PatientMFA {
	case "", PatientMFAOptional, PatientMFARequired:
		return nil
	}
	return fmt.Errorf("%w: auth.patient_mfa (PHIVAULT_PATIENT_MFA): must be %q or %q", ErrInvalid, PatientMFAOptional, PatientMFARequired)
}
