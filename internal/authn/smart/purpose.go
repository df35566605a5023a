package smart

import (
	"errors"
	"slices"
)

// ErrPurpose means a registered purpose of use is not one the server
// knows.
var ErrPurpose = errors.New("smart: unknown purpose of use")

// Purposes are the v3 PurposeOfUse codes
// (http://terminology.hl7.org/CodeSystem/v3-ActReason) a backend client
// may be registered for. The purpose is what its bulk exports disclose
// for (ADR 0049): patient Consents are matched against it, and the audit
// log records it. ETREAT is not registrable: an emergency is declared
// per access by a clinician (break the glass), not by a service.
var Purposes = []string{
	"TREAT",     // treatment
	"HPAYMT",    // payment
	"HOPERAT",   // healthcare operations
	"HRESCH",    // research
	"PUBHLTH",   // public health
	"HQUALIMP",  // quality improvement
	"COVERAGE",  // coverage under a policy or program
	"HSYSADMIN", // system administration
	"PATRQT",    // the patient's request
}

// ValidPurpose reports whether p may be registered ("" included: no
// purpose, the client cannot export).
func ValidPurpose(p string) bool { return p == "" || slices.Contains(Purposes, p) }
