package monitor

import "math"

// The combined score of an alert is a logistic model: every detector
// adds a weight to the log-odds that the finding is a real misuse, and
// the score is logistic(sum). One reporting rule holds for every
// dataset: an alert is reported when its score reaches [ReportScore]
// (log-odds 0, "more likely misuse than not"). The weights are the
// only knobs; they were set from the literature's ranking of signals
// (self, family and co-worker access first, Boxwala et al. 2011;
// Menon et al. 2014) and then tuned on training seeds of the scenario
// generator only (ADR 0045 gives the procedure and the held-out figures).
const (
	// ReportScore is the single reporting rule: below it a finding is a
	// candidate and is not returned by [Engine.Alerts].
	ReportScore = 0.5
	// HighScore and MediumScore split reported alerts into severities;
	// high ones go to the SIEM and to the notification channels, so
	// the bar is odds of 9 to 1.
	HighScore   = 0.9
	MediumScore = 0.75
)

// Weights are the log-odds contributions of each signal. The zero
// value is not useful: start from [DefaultWeights].
type Weights struct {
	// Pair findings: one user's accesses to one patient.
	PairBias        float64 // prior log-odds that an access is misuse
	Unexplained     float64 // no explanation for at least one access
	Related         float64 // no explanation at the time, but a relation of the patient with the user's department at another time or through a colleague
	ExplainedWeak   float64 // explained only by the department, an order by role, a billing role or a self-declared break-the-glass
	ExplainedStrong float64 // the user is named: care team, encounter participant, order performer, billing
	Self            float64 // the patient is the user
	FamilyLine      float64 // same surname and same address line
	FamilyPostal    float64 // same surname and same postal code only
	NeighbourStreet float64 // same street (house number aside), other surname
	NeighbourPostal float64 // same postal code only, other surname
	Coworker        float64 // the patient works in one of the user's departments
	Workforce       float64 // the patient is another workforce member
	VIP             float64 // V or R label, unexplained
	OffHours        float64 // an unexplained access outside the user's rostered hours

	// Behaviour findings: a user's window of accesses.
	// Volume and browsing use a robust z-score z (median and MAD of the
	// user's own history and of peers); their log-odds are
	// PerZ*(z-ZCut), saturated at ZMax.
	ZCut       float64 // Iglewicz and Hoaglin's 3.5
	ZMax       float64
	VolumePerZ float64
	// VolumeExplained is added times the share of the spike (patients
	// above the usual count) not accounted for by unexplained patients: a spike whose every access is explained is a
	// busy shift (a clerk after a weekend, a consultant on a round), so
	// its default, -(ZMax-ZCut)*VolumePerZ-1, keeps it below the
	// reporting rule whatever its size.
	VolumeExplained float64
	BrowsingPerZ    float64
	// BrowsingMin is the fewest unexplained patients that make a burst:
	// below it a z-score over a zero median means nothing.
	BrowsingMin int
	// BrowsingOffHours is added when most of a burst is off-hours.
	BrowsingOffHours float64
	// Bulk log-odds are BulkBias + BulkPerLog*ln(patients).
	BulkBias   float64
	BulkPerLog float64
	// BulkUsual is added when the day's bulk count is usual for the
	// user (robust z under ZCut against their own past days).
	BulkUsual float64

	// Attack findings: log-odds Slope*ln(n/Base) for n events of the
	// kind in the detector's window (so n == Base scores 0.5).
	Stuffing, Spraying, MFA, Token, Enumeration, Denied CountRule
	// SignInShare is subtracted times the share of successful sign-ins
	// from the address: a hospital's shared gateway (NAT, proxy, Citrix)
	// sees many people mistype among many successes; an attacker's
	// address sees almost only failures.
	SignInShare float64
	// Session is the log-odds of one session from two addresses.
	Session float64
}

// CountRule scores a count: log-odds Slope*ln(n/Base).
type CountRule struct {
	Base  float64
	Slope float64
}

func (r CountRule) logOdds(n int) float64 {
	if n <= 0 {
		return math.Inf(-1)
	}
	return r.Slope * math.Log(float64(n)/r.Base)
}

// DefaultWeights are the tuned weights (ADR 0045).
func DefaultWeights() Weights {
	return Weights{
		PairBias:        -4,
		Unexplained:     2.5,
		Related:         1,
		ExplainedWeak:   -2,
		ExplainedStrong: -3,
		Self:            6.5,
		FamilyLine:      5.5,
		FamilyPostal:    3.5,
		NeighbourStreet: 3.5,
		NeighbourPostal: 1.25,
		Coworker:        4,
		Workforce:       2,
		VIP:             3.5,
		OffHours:        3,

		ZCut:             3.5,
		ZMax:             10,
		VolumePerZ:       1,
		VolumeExplained:  -7.5,
		BrowsingPerZ:     1,
		BrowsingMin:      5,
		BrowsingOffHours: 1,
		BulkBias:         -3,
		BulkPerLog:       1.5,
		BulkUsual:        -4,

		// Credential stuffing: distinct accounts failing from one
		// address in an hour; people mistype their own password, not
		// five others'.
		Stuffing: CountRule{Base: 5, Slope: 3},
		// Password spraying: distinct accounts with few failures each
		// from one address in a day (low and slow).
		Spraying: CountRule{Base: 8, Slope: 3},
		// Second-factor failures of one account in an hour (push
		// fatigue, a stolen password).
		MFA: CountRule{Base: 4, Slope: 3},
		// Refused tokens from one address in an hour.
		Token: CountRule{Base: 5, Slope: 3},
		// Distinct ids that do not exist, read by one user or address
		// in an hour.
		Enumeration: CountRule{Base: 5, Slope: 3},
		// Refused requests of one user or address in an hour.
		Denied:      CountRule{Base: 8, Slope: 3},
		SignInShare: 4,
		Session:     1.5,
	}
}

func logistic(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func severityOf(score float64) Severity {
	switch {
	case score >= HighScore:
		return SeverityHigh
	case score >= MediumScore:
		return SeverityMedium
	}
	return SeverityLow
}

// round keeps scores readable and stable across runs.
func round(x float64) float64 { return math.Round(x*1000) / 1000 }
