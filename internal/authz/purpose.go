package authz

import (
	"github.com/phivault/phivault/internal/authn"
)

// PurposeOf is the v3 PurposeOfUse of a principal's accesses by its
// roles (a break-the-glass grant makes a decision's purpose ETREAT
// instead, Decision.Purpose): clinicians TREAT, patients PATRQT,
// billing HPAYMT, researchers HRESCH, everyone else (front desk,
// oversight, service credentials) HOPERAT. It is what the audit log
// records and what consent provisions with a purpose are matched on.
func PurposeOf(roles []string) string {
	for _, r := range roles {
		switch r {
		case "physician", "nurse":
			return "TREAT"
		}
	}
	for _, r := range roles {
		switch r {
		case "patient":
			return "PATRQT"
		case "billing":
			return "HPAYMT"
		case "researcher":
			return "HRESCH"
		}
	}
	return "HOPERAT"
}

// purposeOfUse is the purpose of one decision: ETREAT under a
// break-the-glass grant on the patient, else the principal's registered
// purpose (a backend client's, authn.Principal.Purpose), else the
// roles' purpose.
func purposeOfUse(p authn.Principal, breakGlass bool) string {
	if breakGlass {
		return "ETREAT"
	}
	if p.Purpose != "" {
		return p.Purpose
	}
	return PurposeOf(p.Roles)
}

// ConsentActions are the consentaction codes
// (http://terminology.hl7.org/CodeSystem/consentaction) a request
// performs, for consent provisions with an action: reading is access
// and use, and a disclosure too when the data leaves for a client that
// is not a workforce or patient session (a SMART app, a backend client,
// an API token); creating is collect; updating, relabelling, deleting
// and erasing are correct.
func ConsentActions(a Action, p authn.Principal) []string {
	switch a {
	case Export:
		// A bulk export is a disclosure to the client (Bulk Data IG).
		return []string{"access", "use", "disclose"}
	case Read, VRead, Search, History, Everything, ViewIdentifiers, OpenGrant, Locate:
		if p.Kind != authn.KindSession {
			return []string{"access", "use", "disclose"}
		}
		return []string{"access", "use"}
	case Create:
		return []string{"collect"}
	case Update, Delete, Erase, Relabel:
		return []string{"correct"}
	}
	return nil
}
