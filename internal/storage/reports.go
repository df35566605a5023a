package storage

import "time"

// AccessReport is a patient's "I don't recognise this access" about one
// audit event, and the privacy officer's handling of it. Comment and
// CloseNote are sealed by the caller with the patient's data key (they
// may hold PHI); the store never sees them in the clear.
type AccessReport struct {
	ID        string
	Patient   string // "Patient/<id>"
	Leaf      int64  // the audit event's leaf index (its log position)
	Reporter  string // account id of the patient
	Created   time.Time
	Comment   []byte    // sealed, or nil
	Closed    time.Time // zero while open
	Closer    string    // account id of the privacy officer who closed it
	CloseNote []byte    // sealed, or nil
}

// Amendment is a patient's request to correct their record (HIPAA
// §164.526) and its decision. Request and Reason are sealed by the
// caller with the patient's data key (they hold PHI); Part is a code of
// the portal's list, not PHI.
type Amendment struct {
	ID        string
	Patient   string // "Patient/<id>"
	Requester string // account id of the patient
	Part      string // which part of the record (privacy.AmendmentParts)
	Created   time.Time
	Request   []byte    // sealed: what is wrong, what it should say
	State     string    // "open", "accepted" or "denied"
	Decided   time.Time // zero while open
	Decider   string    // account id of the privacy officer
	Reason    []byte    // sealed decision note (a denial's basis), or nil
}
