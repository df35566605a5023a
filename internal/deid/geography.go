package deid

import (
	"regexp"
	"strings"
)

// Address.state and Address.country are the geography Safe Harbor
// keeps (§164.514(b)(2)(i)(B) removes only what is smaller than a
// state). They are free strings in FHIR, so a value is kept only when
// it is recognisably a state or a country, never free text posing as
// one ("ZZ Near Elm St").

// usStates are the USPS codes and names of the 50 states, the District
// of Columbia, the territories and the armed forces "states" (USPS
// Publication 28, appendix B), lower-case.
var usStates = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range []string{
		"AL Alabama", "AK Alaska", "AZ Arizona", "AR Arkansas", "CA California", "CO Colorado",
		"CT Connecticut", "DE Delaware", "DC District of Columbia", "FL Florida", "GA Georgia",
		"HI Hawaii", "ID Idaho", "IL Illinois", "IN Indiana", "IA Iowa", "KS Kansas", "KY Kentucky",
		"LA Louisiana", "ME Maine", "MD Maryland", "MA Massachusetts", "MI Michigan", "MN Minnesota",
		"MS Mississippi", "MO Missouri", "MT Montana", "NE Nebraska", "NV Nevada", "NH New Hampshire",
		"NJ New Jersey", "NM New Mexico", "NY New York", "NC North Carolina", "ND North Dakota",
		"OH Ohio", "OK Oklahoma", "OR Oregon", "PA Pennsylvania", "RI Rhode Island",
		"SC South Carolina", "SD South Dakota", "TN Tennessee", "TX Texas", "UT Utah", "VT Vermont",
		"VA Virginia", "WA Washington", "WV West Virginia", "WI Wisconsin", "WY Wyoming",
		"AS American Samoa", "GU Guam", "MP Northern Mariana Islands", "PR Puerto Rico",
		"VI U.S. Virgin Islands", "UM U.S. Minor Outlying Islands", "FM Federated States of Micronesia",
		"MH Marshall Islands", "PW Palau", "AA Armed Forces Americas", "AE Armed Forces Europe",
		"AP Armed Forces Pacific",
	} {
		code, name, _ := strings.Cut(s, " ")
		m[strings.ToLower(code)] = true
		m[strings.ToLower(name)] = true
	}
	m["virgin islands"] = true
	return m
}()

// subdivisionCode is the shape of an ISO 3166-2 subdivision code
// ("US-NH", "CA-ON", "GB-ENG") and of its part after the hyphen alone
// ("ON"): a state of another country.
var subdivisionCode = regexp.MustCompile(`^([A-Z]{2}-)?[A-Z0-9]{1,3}$`)

// countryCode is an ISO 3166-1 alpha-2 or alpha-3 code (FHIR R4
// recommends them for Address.country).
var countryCode = regexp.MustCompile(`^[A-Z]{2,3}$`)

// countryNames are the spellings of the United States kept besides
// ISO 3166-1 codes; other country names are removed (counted), which
// loses little, since codes are what FHIR recommends.
var countryNames = map[string]bool{"united states": true, "united states of america": true, "u.s.": true, "u.s.a.": true, "usa": true, "us": true}

// validState reports whether s is kept as Address.state: a US state or
// territory (USPS code or name, any case) or a subdivision code of the
// ISO 3166-2 shape.
func validState(s string) bool {
	t := strings.TrimSpace(s)
	return usStates[strings.ToLower(t)] || subdivisionCode.MatchString(t)
}

// validCountry reports whether s is kept as Address.country: an ISO
// 3166-1 alpha-2 or alpha-3 code, or a name of the United States.
func validCountry(s string) bool {
	t := strings.TrimSpace(s)
	return countryCode.MatchString(t) || countryNames[strings.ToLower(t)]
}
