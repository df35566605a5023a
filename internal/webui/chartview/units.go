package chartview

import (
	"strconv"
	"strings"
)

// Units as people write them. FHIR quantities carry UCUM codes
// ("mm[Hg]", "Cel", "10*3/uL", "umol/L"), which are made for machines;
// the chart shows the spelling clinicians use ("mmHg", "°C", "×10³/µL",
// "µmol/L"). Unknown codes are shown as given.

// ucumDisplay maps UCUM codes to their usual written form.
var ucumDisplay = map[string]string{
	"mm[Hg]":           "mmHg",
	"Cel":              "°C",
	"[degF]":           "°F",
	"/min":             "/min",
	"{beats}/min":      "/min",
	"{breaths}/min":    "/min",
	"10*3/uL":          "×10³/µL",
	"10*6/uL":          "×10⁶/µL",
	"10*9/L":           "×10⁹/L",
	"10*12/L":          "×10¹²/L",
	"umol/L":           "µmol/L",
	"ug/L":             "µg/L",
	"ug/dL":            "µg/dL",
	"ug/mL":            "µg/mL",
	"uL":               "µL",
	"ug":               "µg",
	"meq/L":            "mEq/L",
	"m[IU]/L":          "mIU/L",
	"[IU]/L":           "IU/L",
	"U/L":              "U/L",
	"[in_i]":           "in",
	"[lb_av]":          "lb",
	"[oz_av]":          "oz",
	"kg/m2":            "kg/m²",
	"m2":               "m²",
	"mL/min/{1.73_m2}": "mL/min/1.73 m²",
	"mL/min/1.73.m2":   "mL/min/1.73 m²",
	"fL":               "fL",
	"pg":               "pg",
	"%":                "%",
	"{score}":          "",
	"1":                "",
	"{ratio}":          "",
	"mmol/mol":         "mmol/mol",
	"g/dL":             "g/dL",
	"mg/dL":            "mg/dL",
	"mmol/L":           "mmol/L",
	"kg":               "kg",
	"g":                "g",
	"cm":               "cm",
	"h":                "h",
	"d":                "days",
	"wk":               "weeks",
	"mo":               "months",
	"a":                "years",
	"[ppth]":           "‰",
	"[pH]":             "",
	"{copies}/mL":      "copies/mL",
	"ng/mL":            "ng/mL",
	"pmol/L":           "pmol/L",
	"nmol/L":           "nmol/L",
	"mg/L":             "mg/L",
	"g/L":              "g/L",
	"mosm/kg":          "mOsm/kg",
	"mL":               "mL",
	"L":                "L",
	"L/min":            "L/min",
	"mg":               "mg",
	"mL/h":             "mL/h",
	"[drp]":            "drops",
	"{puff}":           "puffs",
	"{tbl}":            "tablets",
	"{capsule}":        "capsules",
	"{Cigarette}/d":    "cigarettes a day",
}

// UnitDisplay is the written form of a quantity's unit: the display of
// its UCUM code, else its human-readable unit, else the code.
func UnitDisplay(code, unit string) string {
	if strings.HasPrefix(code, "{") && unit != "" && !strings.HasPrefix(unit, "{") {
		return unit // an annotation ("{tbl}"): the unit as written ("tablet")
	}
	if d, ok := ucumDisplay[code]; ok {
		return d
	}
	if d, ok := ucumDisplay[unit]; ok {
		return d
	}
	if unit != "" {
		return unit
	}
	return code
}

// WithUnit writes a value with its unit as people do: "70 kg",
// "37.2 °C", but "72/min" and "98%".
func WithUnit(v, unit string) string {
	switch {
	case unit == "":
		return v
	case strings.HasPrefix(unit, "/") || unit == "%" || unit == "‰":
		return v + unit
	}
	return v + " " + unit
}

// FmtQuantity writes a number with the written form of UCUM code.
func FmtQuantity(v float64, code string) string {
	return WithUnit(strconv.FormatFloat(v, 'f', -1, 64), UnitDisplay(code, ""))
}
