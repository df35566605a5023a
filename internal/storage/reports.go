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
