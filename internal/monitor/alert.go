package monitor

import "time"

// Category is what an alert is about.
type Category string

// Alert categories. The TSV of "phivault monitor alerts" carries them.
const (
	CatFamily      Category = "family"         // same surname and address as the user
	CatNeighbour   Category = "neighbour"      // same street or postal code as the user
	CatCoworker    Category = "coworker"       // the patient works in the user's department
	CatWorkforce   Category = "workforce"      // the patient is a workforce member elsewhere
	CatSelf        Category = "self"           // the user's own record
	CatVIP         Category = "vip"            // a VIP or restricted record, unexplained
	CatOffHours    Category = "off-hours"      // outside the user's rostered hours, unexplained
	CatVolume      Category = "volume"         // unusually many distinct patients for the user
	CatBulk        Category = "bulk"           // bulk reads or exports
	CatBrowsing    Category = "browsing"       // many unexplained patients in a short time
	CatUnexplained Category = "unexplained"    // an access with no explanation (a candidate)
	CatCredential  Category = "credential"     // credential stuffing or password spraying
	CatMFA         Category = "mfa-failure"    // repeated second-factor failures
	CatToken       Category = "token"          // refused tokens
	CatEnumeration Category = "enumeration"    // reads of ids that do not exist
	CatDenied      Category = "denied"         // many refused requests
	CatSession     Category = "session-hijack" // one session or token from two addresses
)

// Severity orders alerts for delivery: high ones go to the SIEM and
// the notification channels.
type Severity string

// Severities.
const (
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// Alert is one scored finding with the evidence that made it. An alert
// about a pair is keyed by (user, patient); one about a user's
// behaviour (volume, bulk, browsing, attacks) lists each patient it
// covers.
type Alert struct {
	// Key deduplicates: the same Key from a later run updates the
	// alert instead of adding one.
	Key        string
	Source     string // "phivault" or the name of an ingested source
	User       string // "Practitioner/<id>", "User/<id>", or "" (an address)
	Address    string // for attacks on several accounts from one address
	Patients   []string
	Category   Category   // the main category
	Categories []Category // every category that contributed
	Score      float64    // 0..1, higher is worse
	Severity   Severity
	// Explanation is plain language for a privacy officer, with no
	// names: "read 14 patients outside the rostered shift; 12 have no
	// encounter with the user's department; 2 share the user's surname
	// and street".
	Explanation string
	First, Last time.Time
	Evidence    Evidence
}

// Evidence is what made an alert: the accesses and the relationships
// found and not found.
type Evidence struct {
	Accesses []AccessRef `json:"accesses,omitempty"`
	// Found are explanations that were found for some accesses (e.g.
	// "encounter Encounter/9 ended 40 days before"); Missing names the
	// relationships looked for and not found.
	Found   []string `json:"found,omitempty"`
	Missing []string `json:"missing,omitempty"`
	Signals []Signal `json:"signals,omitempty"`
}

// AccessRef is one access in an alert's evidence.
type AccessRef struct {
	Time    time.Time `json:"time"`
	Patient string    `json:"patient,omitempty"`
	Action  string    `json:"action,omitempty"`
	Outcome Outcome   `json:"outcome,omitempty"`
	Address string    `json:"address,omitempty"`
	Ref     string    `json:"ref,omitempty"`
}

// Signal is one detector's contribution to a score.
type Signal struct {
	Detector string  `json:"detector"`
	Value    float64 `json:"value"`  // the feature (a z-score, a count, 1 for a match)
	Weight   float64 `json:"weight"` // its contribution to the score's log-odds
	Detail   string  `json:"detail"`
}
