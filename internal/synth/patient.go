package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Shape of one patient's history.
const (
	minEncounters = 3
	maxEncounters = 10
	minAge        = 18 // adults only: vital-sign trends assume grown patients
	maxAge        = 90
	maxHistory    = 10 // years of encounters before Options.Start
)

// patientGen builds one patient transaction Bundle at a time. It is not safe
// for concurrent use; Generate owns it.
type patientGen struct {
	r   *rand.Rand
	dir *directory
	now time.Time

	entries []obj

	pid, pname string // urn:uuid of the Patient, display name
	home, hosp int    // organization indexes: primary care, hospital
	pcp, hospP int    // practitioner indexes
}

// vitals is the state of a patient's body, drifting between encounters.
type vitals struct {
	height, weight   float64 // cm, kg
	systolic, hr, rr float64 // mm[Hg], /min, /min
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

func (g *patientGen) id() string { return newUUID(g.r) }

func (g *patientGen) add(typ, id string, res obj) {
	g.entries = append(g.entries, entry("urn:uuid:"+id, res, post(typ)))
}

func (g *patientGen) patientBundle() obj {
	r := g.r
	d := g.dir
	g.entries = g.entries[:0]

	pid := g.id()
	g.pid = "urn:uuid:" + pid
	male := r.IntN(2) == 0
	var given, gender, prefix string
	if male {
		given, gender, prefix = givenMale[r.IntN(len(givenMale))], "male", "Mr."
	} else {
		given, gender, prefix = givenFemale[r.IntN(len(givenFemale))], "female", "Ms."
	}
	family := families[r.IntN(len(families))]
	age := minAge + r.IntN(maxAge-minAge+1)
	birth := g.now.AddDate(-age, 0, -r.IntN(365))
	marital := maritalStatuses[r.IntN(len(maritalStatuses))]
	if age < 25 && r.IntN(4) != 0 {
		marital = maritalStatuses[1]
	}
	if !male && marital.code == "M" {
		prefix = "Mrs."
	}
	g.pname = prefix + " " + given + " " + family
	home := places[r.IntN(len(places))]
	g.home = r.IntN(len(d.orgs))
	g.hosp = r.IntN(len(d.orgs))
	g.pcp = g.home*practitionersPerOrg + r.IntN(practitionersPerOrg)
	g.hospP = g.hosp*practitionersPerOrg + r.IntN(practitionersPerOrg)

	g.add("Patient", pid, o(
		"resourceType", "Patient",
		"id", pid,
		"extension", []obj{o("url", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
			"valueCode", map[bool]string{true: "M", false: "F"}[male])},
		"identifier", []obj{
			o("system", sysSynthea, "value", pid),
			o("type", concept(sysV2_0203, code{"MR", "Medical Record Number"}), "system", sysMRN, "value", pid),
			o("type", concept(sysV2_0203, code{"SS", "Social Security Number"}), "system", sysSSN,
				"value", fmt.Sprintf("999-%02d-%04d", 10+r.IntN(90), r.IntN(10000))),
			o("type", concept(sysV2_0203, code{"DL", "Driver's License"}), "system", sysDL,
				"value", fmt.Sprintf("S99%07d", r.IntN(10_000_000))),
		},
		"name", []obj{o("use", "official", "family", family, "given", []string{given}, "prefix", []string{prefix})},
		"telecom", []obj{o("system", "phone", "value", fmt.Sprintf("555-%03d-%04d", 200+r.IntN(800), r.IntN(10000)), "use", "home")},
		"gender", gender,
		"birthDate", birth.Format(time.DateOnly),
		"address", []obj{o(
			"extension", []obj{o("url", "http://hl7.org/fhir/StructureDefinition/geolocation", "extension", []obj{
				o("url", "latitude", "valueDecimal", round(home.lat+(r.Float64()-0.5)*0.05, 6)),
				o("url", "longitude", "valueDecimal", round(home.lon+(r.Float64()-0.5)*0.05, 6)),
			})},
			"line", []string{fmt.Sprintf("%d %s", 1+r.IntN(999), streets[r.IntN(len(streets))])},
			"city", home.city, "state", "MA", "postalCode", home.zip, "country", "US")},
		"maritalStatus", concept(sysMarital, marital),
		"multipleBirthBoolean", false,
		"communication", []obj{o("language", concept(sysLang, code{"en-US", "English"}))},
	))

	// Encounter times: sorted, within the adult life and the last years.
	n := minEncounters + r.IntN(maxEncounters-minEncounters+1)
	years := min(age-minAge+1, 1+r.IntN(maxHistory))
	span := g.now.Sub(g.now.AddDate(-years, 0, 0))
	times := make([]time.Time, n)
	for i := range times {
		// At least a day before now, so that labs and results issued
		// later in the visit still precede it.
		day := g.now.AddDate(0, 0, -1).Add(-time.Duration(r.Int64N(int64(span)))).Truncate(24 * time.Hour)
		times[i] = day.Add(time.Duration(8*3600+r.IntN(9*3600)) * time.Second)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })

	// Chronic conditions and the encounter at which each is diagnosed.
	var chronic []int
	for _, c := range r.Perm(len(conditions))[:8] {
		if conditions[c].chronic && len(chronic) < r.IntN(4) {
			chronic = append(chronic, c)
		}
	}
	onset := make(map[int]int, len(chronic)) // condition -> encounter
	hypertensive, diabetic := false, false
	for _, c := range chronic {
		onset[c] = r.IntN(n)
		switch conditions[c].code.code {
		case "59621000":
			hypertensive = true
		case "44054006":
			diabetic = true
		}
	}

	v := vitals{hr: 62 + r.NormFloat64()*7, rr: 12 + float64(r.IntN(6))}
	if male {
		v.height = 176 + r.NormFloat64()*7
	} else {
		v.height = 163 + r.NormFloat64()*6
	}
	bmi := 26.5 + r.NormFloat64()*4
	v.weight = bmi * v.height * v.height / 10000
	v.systolic = 112 + r.NormFloat64()*8 + float64(age)*0.15
	if hypertensive {
		v.systolic += 18
	}

	for i, start := range times {
		et := encounterTypes[r.IntN(4)]
		if i == 0 {
			et = encounterTypes[1] // first visit: check-up
		} else if x := r.IntN(20); x == 0 {
			et = encounterTypes[5]
		} else if x < 3 {
			et = encounterTypes[4]
		}
		var dur time.Duration
		org, prac := g.home, g.pcp
		switch et.class {
		case "AMB":
			dur = time.Duration(15+r.IntN(31)) * time.Minute
		case "EMER":
			dur = time.Duration(60+r.IntN(300)) * time.Minute
			org, prac = g.hosp, g.hospP
		case "IMP":
			dur = time.Duration(24+r.IntN(96)) * time.Hour
			org, prac = g.hosp, g.hospP
		}
		end := start.Add(dur)
		if end.After(g.now) {
			end = g.now
		}
		period := o("start", dateTime(start), "end", dateTime(end))
		eid := g.id()
		eurn := "urn:uuid:" + eid

		// Conditions diagnosed at this encounter.
		var reasons []obj
		type dx struct {
			c   int
			urn string
		}
		var diagnosed []dx
		if et.code.code == "185345009" || et.class == "EMER" {
			acute := []int{}
			for c := range conditions {
				if !conditions[c].chronic {
					acute = append(acute, c)
				}
			}
			c := acute[r.IntN(len(acute))]
			diagnosed = append(diagnosed, dx{c, ""})
		}
		for _, c := range chronic {
			if onset[c] == i {
				diagnosed = append(diagnosed, dx{c, ""})
			}
		}
		for k := range diagnosed {
			diagnosed[k].urn = "urn:uuid:" + g.id()
			reasons = append(reasons, concept(sysSNOMED, conditions[diagnosed[k].c].code))
		}

		g.add("Encounter", eid, o(
			"resourceType", "Encounter",
			"id", eid,
			"identifier", []obj{o("use", "official", "system", sysSynthea, "value", eid)},
			"status", "finished",
			"class", o("system", sysActCode, "code", et.class, "display", classDisplay[et.class]),
			"type", []obj{concept(sysSNOMED, et.code)},
			"subject", ref(g.pid, g.pname),
			"participant", []obj{o(
				"type", []obj{concept(sysPartType, code{"PPRF", "primary performer"})},
				"period", period,
				"individual", d.pracRef(prac),
			)},
			"period", period,
			"reasonCode", reasons,
			"location", []obj{o("location", d.locRef(org))},
			"serviceProvider", d.orgRef(org),
		))

		if i == 0 {
			g.careTeam(eurn, start)
			g.allergies(eurn, start)
		}

		for _, dxi := range diagnosed {
			c := conditions[dxi.c]
			clinical := "active"
			var abatement string
			if !c.chronic {
				if ab := start.AddDate(0, 0, 7+r.IntN(15)); ab.Before(g.now) {
					clinical, abatement = "resolved", dateTime(ab)
				}
			}
			cid := dxi.urn[len("urn:uuid:"):]
			g.add("Condition", cid, o(
				"resourceType", "Condition",
				"id", cid,
				"clinicalStatus", o("coding", []obj{o("system", sysCondClin, "code", clinical)}),
				"verificationStatus", o("coding", []obj{o("system", sysCondVer, "code", "confirmed")}),
				"category", []obj{o("coding", []obj{coding(sysCondCat, code{"encounter-diagnosis", "Encounter Diagnosis"})})},
				"code", concept(sysSNOMED, c.code),
				"subject", ref(g.pid, ""),
				"encounter", ref(eurn, ""),
				"onsetDateTime", dateTime(start),
				"abatementDateTime", abatement,
				"recordedDate", dateTime(start),
			))
			for _, m := range c.meds {
				if r.IntN(3) == 0 && len(c.meds) > 1 {
					continue // not every indicated drug is prescribed
				}
				status := "active"
				if !c.chronic {
					status = "completed"
				}
				g.medication(eurn, dxi.urn, start, prac, medications[m], status)
			}
		}

		// Vital signs drift: weight walks slowly upward, blood pressure
		// rises with age and falls under treatment.
		if i > 0 {
			yrs := start.Sub(times[i-1]).Hours() / (24 * 365.25)
			v.weight = math.Max(40, math.Min(200, v.weight+0.4*yrs+r.NormFloat64()*1.2))
			v.systolic += 0.5*yrs + r.NormFloat64()*2
		}
		sys := v.systolic + r.NormFloat64()*5
		if hypertensive && onset[chronicIndex(chronic, "59621000")] < i {
			sys -= 10
		}
		temp := 36.6 + r.NormFloat64()*0.25
		if et.class == "EMER" && r.IntN(3) == 0 {
			temp += 1.2 + r.Float64()
		}
		g.vitals(eurn, start, v, sys, temp)

		if et.code.code == "185349003" || et.code.code == "162673000" || et.class == "IMP" {
			g.labs(eurn, start, diabetic)
		}
		if r.IntN(4) == 0 {
			p := procedures[r.IntN(len(procedures))]
			if p.code == "71651007" && male {
				p = procedures[1]
			}
			pid := g.id()
			ps := start.Add(time.Duration(r.IntN(int(dur/time.Minute)/2+1)) * time.Minute)
			pe := ps.Add(time.Duration(10+r.IntN(20)) * time.Minute)
			if pe.After(end) {
				pe = end
			}
			g.add("Procedure", pid, o(
				"resourceType", "Procedure",
				"id", pid,
				"status", "completed",
				"code", concept(sysSNOMED, p),
				"subject", ref(g.pid, ""),
				"encounter", ref(eurn, ""),
				"performedPeriod", o("start", dateTime(ps), "end", dateTime(pe)),
				"location", d.locRef(org),
			))
		}
		if et.class == "AMB" && et.code.code != "185345009" {
			if r.IntN(5) < 3 {
				g.immunization(eurn, start, org, vaccines[0])
			}
			if r.IntN(6) == 0 {
				g.immunization(eurn, start, org, vaccines[1+r.IntN(len(vaccines)-1)])
			}
		}
	}
	return o("resourceType", "Bundle", "type", "transaction", "entry", g.entries)
}

func chronicIndex(chronic []int, snomed string) int {
	for _, c := range chronic {
		if conditions[c].code.code == snomed {
			return c
		}
	}
	return -1
}

func (g *patientGen) careTeam(eurn string, start time.Time) {
	d := g.dir
	id := g.id()
	g.add("CareTeam", id, o(
		"resourceType", "CareTeam",
		"id", id,
		"status", "active",
		"subject", ref(g.pid, ""),
		"encounter", ref(eurn, ""),
		"period", o("start", dateTime(start)),
		"participant", []obj{
			o("role", []obj{concept(sysSNOMED, code{"116153009", "Patient"})}, "member", ref(g.pid, g.pname)),
			o("role", []obj{concept(sysSNOMED, code{"223366009", "Healthcare professional (occupation)"})}, "member", d.pracRef(g.pcp)),
			o("role", []obj{concept(sysSNOMED, code{"224891009", "Healthcare services (qualifier value)"})}, "member", d.orgRef(g.home)),
		},
		"managingOrganization", []obj{d.orgRef(g.home)},
	))
}

func (g *patientGen) allergies(eurn string, start time.Time) {
	r := g.r
	k := 0
	if r.IntN(10) < 3 {
		k = 1 + r.IntN(2)
	}
	for _, a := range r.Perm(len(allergies))[:k] {
		al := allergies[a]
		id := g.id()
		crit := "low"
		if r.IntN(4) == 0 {
			crit = "high"
		}
		g.add("AllergyIntolerance", id, o(
			"resourceType", "AllergyIntolerance",
			"id", id,
			"clinicalStatus", o("coding", []obj{o("system", sysAllClin, "code", "active")}),
			"verificationStatus", o("coding", []obj{o("system", sysAllVer, "code", "confirmed")}),
			"type", "allergy",
			"category", []string{al.category},
			"criticality", crit,
			"code", concept(sysSNOMED, al.code),
			"patient", ref(g.pid, ""),
			"encounter", ref(eurn, ""),
			"recordedDate", dateTime(start),
		))
	}
}

func (g *patientGen) medication(eurn, reason string, at time.Time, prac int, med code, status string) {
	id := g.id()
	g.add("MedicationRequest", id, o(
		"resourceType", "MedicationRequest",
		"id", id,
		"status", status,
		"intent", "order",
		"medicationCodeableConcept", concept(sysRxNorm, med),
		"subject", ref(g.pid, ""),
		"encounter", ref(eurn, ""),
		"authoredOn", dateTime(at),
		"requester", g.dir.pracRef(prac),
		"reasonReference", []obj{ref(reason, "")},
		"dosageInstruction", []obj{o(
			"sequence", 1,
			"timing", o("repeat", o("frequency", 1+g.r.IntN(2), "period", 1.0, "periodUnit", "d")),
			"asNeededBoolean", false,
		)},
	))
}

func (g *patientGen) immunization(eurn string, at time.Time, org int, vac code) {
	id := g.id()
	g.add("Immunization", id, o(
		"resourceType", "Immunization",
		"id", id,
		"status", "completed",
		"vaccineCode", concept(sysCVX, vac),
		"patient", ref(g.pid, ""),
		"encounter", ref(eurn, ""),
		"occurrenceDateTime", dateTime(at),
		"primarySource", true,
		"location", g.dir.locRef(org),
	))
}

var (
	catVital = []obj{o("coding", []obj{coding(sysObsCat, code{"vital-signs", "Vital signs"})})}
	catLab   = []obj{o("coding", []obj{coding(sysObsCat, code{"laboratory", "Laboratory"})})}

	loincHeight = code{"8302-2", "Body Height"}
	loincWeight = code{"29463-7", "Body Weight"}
	loincBMI    = code{"39156-5", "Body mass index (BMI) [Ratio]"}
	loincBP     = code{"85354-9", "Blood pressure panel with all children optional"}
	loincSys    = code{"8480-6", "Systolic blood pressure"}
	loincDia    = code{"8462-4", "Diastolic blood pressure"}
	loincHR     = code{"8867-4", "Heart rate"}
	loincRR     = code{"9279-1", "Respiratory rate"}
	loincTemp   = code{"8310-5", "Body temperature"}
)

func quantity(v float64, unit string) obj {
	return o("value", v, "unit", unit, "system", sysUCUM, "code", unit)
}

// observation adds one Observation; value is a valueQuantity or nil when
// components carry the values.
func (g *patientGen) observation(eurn string, at time.Time, cat []obj, c code, value obj, components []obj) {
	id := g.id()
	g.add("Observation", id, o(
		"resourceType", "Observation",
		"id", id,
		"status", "final",
		"category", cat,
		"code", concept(sysLOINC, c),
		"subject", ref(g.pid, ""),
		"encounter", ref(eurn, ""),
		"effectiveDateTime", dateTime(at),
		"issued", instant(at.Add(time.Duration(g.r.IntN(600_000))*time.Millisecond)),
		"valueQuantity", value,
		"component", components,
	))
}

func (g *patientGen) vitals(eurn string, at time.Time, v vitals, sys, temp float64) {
	r := g.r
	h := round(v.height+r.NormFloat64()*0.3, 1)
	w := round(v.weight, 1)
	g.observation(eurn, at, catVital, loincHeight, quantity(h, "cm"), nil)
	g.observation(eurn, at, catVital, loincWeight, quantity(w, "kg"), nil)
	g.observation(eurn, at, catVital, loincBMI, quantity(round(w/(h*h/10000), 1), "kg/m2"), nil)
	dia := 0.62*sys + 4 + r.NormFloat64()*4
	g.observation(eurn, at, catVital, loincBP, nil, []obj{
		o("code", concept(sysLOINC, loincDia), "valueQuantity", quantity(math.Round(dia), "mm[Hg]")),
		o("code", concept(sysLOINC, loincSys), "valueQuantity", quantity(math.Round(sys), "mm[Hg]")),
	})
	g.observation(eurn, at, catVital, loincHR, quantity(math.Round(v.hr+r.NormFloat64()*5), "/min"), nil)
	g.observation(eurn, at, catVital, loincRR, quantity(math.Round(v.rr+r.NormFloat64()), "/min"), nil)
	g.observation(eurn, at, catVital, loincTemp, quantity(round(temp, 1), "Cel"), nil)
}

func (g *patientGen) labs(eurn string, at time.Time, diabetic bool) {
	r := g.r
	k := 2 + r.IntN(3)
	for _, li := range r.Perm(len(labs))[:k] {
		l := labs[li]
		x := l.lo + r.Float64()*(l.hi-l.lo)
		if diabetic {
			switch l.code.code {
			case "2339-0":
				x += 40 + r.Float64()*60
			case "4548-4":
				x += 1 + r.Float64()*2.5
			}
		}
		g.observation(eurn, at.Add(15*time.Minute), catLab, l.code, quantity(round(x, l.decimals), l.unit), nil)
	}
}
