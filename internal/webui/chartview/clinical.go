package chartview

import (
	"strconv"
	"strings"
)

// The chart's clinical sections beyond problems and allergies:
// medications with their dose and instructions, immunizations,
// procedures, encounters as a timeline, diagnostic reports with their
// results, and laboratory results as a table with reference ranges,
// high/low flags and the trend from the previous value of the same test.

// ProblemRow is a Condition of the problem list.
type ProblemRow struct {
	Row
	ID       string
	Version  int64
	Active   bool // clinicalStatus active, recurrence or relapse
	Resolved string
}

func problemRow(r Obj) ProblemRow {
	status := ""
	for _, c := range r.Obj("clinicalStatus").List("coding") {
		status = c.Str("code")
	}
	p := ProblemRow{Row: Row{When: shortDate(firstStr(r, "onsetDateTime", "recordedDate")), What: concept(r.Obj("code")),
		Status: concept(r.Obj("clinicalStatus"))}, ID: r.Str("id")}
	p.Version, _ = strconv.ParseInt(r.Obj("meta").Str("versionId"), 10, 64)
	p.Active = status == "active" || status == "recurrence" || status == "relapse"
	p.Resolved = shortDate(r.Str("abatementDateTime"))
	return p
}

// medicationRow shows a MedicationRequest with its dose (quantity,
// route, frequency) and instructions.
func medicationRow(r Obj) Row {
	var dose []string
	instr := ""
	if di := r.List("dosageInstruction"); len(di) > 0 {
		d := di[0]
		for _, dr := range d.List("doseAndRate") {
			if q := quantity(dr.Obj("doseQuantity")); q != "" {
				dose = append(dose, q)
			}
		}
		if rt := concept(d.Obj("route")); rt != "" {
			dose = append(dose, rt)
		}
		if f := frequency(d.Obj("timing")); f != "" {
			dose = append(dose, f)
		}
		if b, ok := d["asNeededBoolean"].(bool); ok && b {
			dose = append(dose, "as needed")
		}
		instr = d.Str("text")
		if pi := d.Str("patientInstruction"); pi != "" && pi != instr {
			instr = strings.TrimSpace(instr + " " + pi)
		}
	}
	detail := strings.Join(dose, ", ")
	if instr != "" {
		if detail != "" {
			detail += " — "
		}
		detail += instr
	}
	what := concept(r.Obj("medicationCodeableConcept"))
	if what == "" {
		what = r.Obj("medicationReference").Str("display")
	}
	return Row{When: shortDate(r.Str("authoredOn")), What: what, Detail: detail, Status: r.Str("status")}
}

// frequency writes a Timing: its code's text, else "2 times a day".
func frequency(t Obj) string {
	if c := concept(t.Obj("code")); c != "" {
		return c
	}
	rep := t.Obj("repeat")
	f, ok1 := Number(rep["frequency"])
	p, ok2 := Number(rep["period"])
	if !ok1 || !ok2 || p <= 0 {
		return ""
	}
	unit := map[string]string{"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month", "a": "year"}[rep.Str("periodUnit")]
	if unit == "" {
		return ""
	}
	times := FmtNum(f) + " times"
	if f == 1 {
		times = "once"
	}
	if p == 1 {
		return times + " a " + unit
	}
	return times + " every " + FmtNum(p) + " " + unit + "s"
}

func immunizationRow(r Obj) Row {
	detail := ""
	if ds := r.Obj("doseQuantity"); ds != nil {
		detail = quantity(ds)
	}
	if lot := r.Str("lotNumber"); lot != "" {
		detail = strings.TrimSpace(detail + " lot " + lot)
	}
	return Row{When: shortDate(firstStr(r, "occurrenceDateTime", "recorded")), What: concept(r.Obj("vaccineCode")), Detail: detail, Status: r.Str("status")}
}

func procedureRow(r Obj) Row {
	when := r.Str("performedDateTime")
	if when == "" {
		when = r.Obj("performedPeriod").Str("start")
	}
	detail := ""
	if rs := r.List("reasonCode"); len(rs) > 0 {
		detail = concept(rs[0])
	}
	return Row{When: shortDate(when), What: concept(r.Obj("code")), Detail: detail, Status: r.Str("status")}
}

// EncounterRow is one visit of the timeline.
type EncounterRow struct {
	Start, End, What, Class, Reason, Status string
	Location, Participants                  string
	ServiceProvider                         string
}

func encounterRow(r Obj) EncounterRow {
	e := EncounterRow{Start: shortDate(r.Obj("period").Str("start")), End: shortDate(r.Obj("period").Str("end")), Status: r.Str("status")}
	if ts := r.List("type"); len(ts) > 0 {
		e.What = concept(ts[0])
	}
	e.Class = r.Obj("class").Str("display")
	if e.Class == "" {
		e.Class = r.Obj("class").Str("code")
	}
	if e.What == "" {
		e.What = e.Class
	}
	var reasons []string
	for _, rc := range r.List("reasonCode") {
		if c := concept(rc); c != "" {
			reasons = append(reasons, c)
		}
	}
	e.Reason = strings.Join(reasons, "; ")
	var locs, people []string
	for _, l := range r.List("location") {
		if d := l.Obj("location").Str("display"); d != "" {
			locs = append(locs, d)
		}
	}
	for _, p := range r.List("participant") {
		if d := p.Obj("individual").Str("display"); d != "" {
			people = append(people, d)
		}
	}
	e.Location, e.Participants = strings.Join(locs, "; "), strings.Join(people, "; ")
	e.ServiceProvider = r.Obj("serviceProvider").Str("display")
	return e
}

// LabRow is one laboratory result.
type LabRow struct {
	ID, When, Test, Value, Range string
	// Flag is "H" (high), "L" (low), "A" (abnormal), "HH"/"LL"
	// (critical), or "": from the Observation's interpretation, else
	// computed from its reference range. FlagLabel says it in words.
	Flag, FlagLabel string
	// Trend is "↑", "↓" or "→" against the previous result of the same
	// test (the next older row), TrendLabel in words; "" without one.
	Trend, TrendLabel string
	code              string
	value             float64
	hasValue          bool
}

const interpretationSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

var flagWords = map[string]string{"H": "high", "L": "low", "HH": "critically high", "LL": "critically low", "A": "abnormal", "AA": "critically abnormal", "HU": "very high", "LU": "very low"}

// LabRows shapes laboratory Observations (newest first) into rows with
// flags and trends.
func LabRows(obs []Obj) []LabRow {
	rows := make([]LabRow, 0, len(obs))
	for _, o := range obs {
		r := LabRow{ID: o.Str("id"), When: shortDate(o.Str("effectiveDateTime")), Test: concept(o.Obj("code")), Value: observationValue(o)}
		for _, c := range o.Obj("code").List("coding") {
			r.code = c.Str("system") + "|" + c.Str("code")
			break
		}
		q := o.Obj("valueQuantity")
		r.value, r.hasValue = Number(q["value"])
		if rr := o.List("referenceRange"); len(rr) > 0 {
			lo, okLo := Number(rr[0].Obj("low")["value"])
			hi, okHi := Number(rr[0].Obj("high")["value"])
			code := firstStr(rr[0].Obj("high"), "code")
			if code == "" {
				code = rr[0].Obj("low").Str("code")
			}
			unit := UnitDisplay(code, firstStr(rr[0].Obj("high"), "unit"))
			switch {
			case okLo && okHi:
				r.Range = WithUnit(FmtNum(lo)+"–"+FmtNum(hi), unit)
			case okHi:
				r.Range = WithUnit("≤ "+FmtNum(hi), unit)
			case okLo:
				r.Range = WithUnit("≥ "+FmtNum(lo), unit)
			default:
				r.Range = rr[0].Str("text")
			}
			if r.hasValue {
				switch {
				case okHi && r.value > hi:
					r.Flag = "H"
				case okLo && r.value < lo:
					r.Flag = "L"
				}
			}
		}
		for _, in := range o.List("interpretation") {
			for _, c := range in.List("coding") {
				if c.Str("system") == interpretationSystem {
					if _, ok := flagWords[c.Str("code")]; ok {
						r.Flag = c.Str("code")
					} else if c.Str("code") == "N" {
						r.Flag = ""
					}
				}
			}
		}
		r.FlagLabel = flagWords[r.Flag]
		rows = append(rows, r)
	}
	for i := range rows {
		if !rows[i].hasValue || rows[i].code == "" {
			continue
		}
		for j := i + 1; j < len(rows); j++ {
			if rows[j].code != rows[i].code || !rows[j].hasValue {
				continue
			}
			switch {
			case rows[i].value > rows[j].value:
				rows[i].Trend, rows[i].TrendLabel = "↑", "up from "+FmtNum(rows[j].value)
			case rows[i].value < rows[j].value:
				rows[i].Trend, rows[i].TrendLabel = "↓", "down from "+FmtNum(rows[j].value)
			default:
				rows[i].Trend, rows[i].TrendLabel = "→", "unchanged"
			}
			break
		}
	}
	return rows
}

// ReportRow is a DiagnosticReport with the results it lists.
type ReportRow struct {
	Row
	Conclusion string
	Results    []LabRow
	// Missing counts results not among the chart's latest laboratory
	// results (older ones, or another category).
	Missing int
}

func reportRow(r Obj, labs []LabRow) ReportRow {
	rep := ReportRow{Row: Row{When: shortDate(firstStr(r, "effectiveDateTime", "issued")), What: concept(r.Obj("code")), Status: r.Str("status")},
		Conclusion: r.Str("conclusion")}
	for _, ref := range r.List("result") {
		id, ok := strings.CutPrefix(ref.Str("reference"), "Observation/")
		if !ok {
			continue
		}
		found := false
		for _, l := range labs {
			if l.ID == id {
				rep.Results = append(rep.Results, l)
				found = true
				break
			}
		}
		if !found {
			rep.Missing++
		}
	}
	return rep
}
