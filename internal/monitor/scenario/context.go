package scenario

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/phivault/phivault/internal/ident"
)

type obj = map[string]any

func coding(system, code string) obj { return obj{"system": system, "code": code} }

func cc(system, code string) obj { return obj{"coding": []obj{coding(system, code)}} }

func ref(s string) obj { return obj{"reference": s} }

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (a address) fhir() []obj {
	return []obj{{"use": "home", "line": []string{a.line}, "city": a.city, "postalCode": a.postal}}
}

var dayCodes = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func hhmm(m int) string { return fmt.Sprintf("%02d:%02d:00", (m/60)%24, m%60) }

// writeContext writes the hospital as one FHIR R4 Bundle of type
// collection: Organizations (hospital, departments, units, partOf),
// Practitioners and PractitionerRoles (code, availableTime), Patients
// (meta.security V or R on some), Encounters, CareTeams,
// ServiceRequests, an Account per encounter and a Claim per stay.
func (w *world) writeContext(out io.Writer) error {
	bw := bufio.NewWriterSize(out, 1<<16)
	if _, err := io.WriteString(bw, `{"resourceType":"Bundle","type":"collection","entry":[`); err != nil {
		return err
	}
	first := true
	put := func(r obj) error {
		if !first {
			if err := bw.WriteByte(','); err != nil {
				return err
			}
		}
		first = false
		b, err := json.Marshal(obj{"fullUrl": fmt.Sprintf("urn:phivault-synth:%s/%s", r["resourceType"], r["id"]), "resource": r})
		if err != nil {
			return err
		}
		_, err = bw.Write(b)
		return err
	}
	for _, o := range w.orgs {
		r := obj{"resourceType": "Organization", "id": o.id, "active": true, "name": o.name}
		if o.parent >= 0 {
			r["partOf"] = ref("Organization/" + w.orgs[o.parent].id)
			r["type"] = []obj{cc("http://terminology.hl7.org/CodeSystem/organization-type", "dept")}
		} else {
			r["type"] = []obj{cc("http://terminology.hl7.org/CodeSystem/organization-type", "prov")}
		}
		if err := put(r); err != nil {
			return err
		}
	}
	for _, p := range w.pracs {
		if err := put(obj{"resourceType": "Practitioner", "id": p.id, "active": true,
			"name": []obj{{"family": p.family, "given": []string{p.given}}}, "gender": p.gender,
			"birthDate": p.birth, "address": p.addr.fhir()}); err != nil {
			return err
		}
		var avail []obj
		for _, s := range p.shifts {
			var days []string
			for d, on := range s.days {
				if on {
					days = append(days, dayCodes[d])
				}
			}
			avail = append(avail, obj{"daysOfWeek": days, "availableStartTime": hhmm(s.start), "availableEndTime": hhmm(s.end)})
		}
		if err := put(obj{"resourceType": "PractitionerRole", "id": "role-" + p.id, "active": true,
			"practitioner": ref("Practitioner/" + p.id), "organization": ref("Organization/" + w.orgs[p.org].id),
			"code": []obj{cc(roleSystem(p.role), p.role)}, "availableTime": avail}); err != nil {
			return err
		}
	}
	for _, p := range w.pats {
		r := obj{"resourceType": "Patient", "id": p.id, "active": true,
			"name": []obj{{"use": "official", "family": p.family, "given": []string{p.given}}}, "gender": p.gender,
			"birthDate": p.birth, "address": p.addr.fhir()}
		if p.label != "" {
			r["meta"] = obj{"security": []obj{coding("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", p.label)}}
		}
		if err := put(r); err != nil {
			return err
		}
	}
	logEnd := w.day(w.o.Days)
	period := func(a, b time.Time) obj {
		p := obj{"start": ts(a)}
		if b.Before(logEnd) {
			p["end"] = ts(b)
		}
		return p
	}
	for _, e := range w.encs {
		subject := ref(ident.PatientPrefix + w.pats[e.patient].id)
		status := "finished"
		if !e.end.Before(logEnd) {
			status = "in-progress"
		}
		var parts []obj
		for _, p := range e.parts {
			x := obj{"type": []obj{cc("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", p.typ)},
				"individual": ref("Practitioner/" + w.pracs[p.prac].id)}
			if !p.start.IsZero() {
				x["period"] = obj{"start": ts(p.start), "end": ts(p.end)}
			}
			parts = append(parts, x)
		}
		if err := put(obj{"resourceType": "Encounter", "id": e.id, "status": status,
			"class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", e.class), "subject": subject,
			"participant": parts, "period": period(e.start, e.end),
			"serviceProvider": ref("Organization/" + w.orgs[e.org].id)}); err != nil {
			return err
		}
		if len(e.team) > 0 {
			var members []obj
			for _, p := range e.team {
				x := obj{"role": []obj{cc(roleSystem(w.pracs[p.prac].role), w.pracs[p.prac].role)},
					"member": ref("Practitioner/" + w.pracs[p.prac].id)}
				if !p.start.IsZero() {
					x["period"] = obj{"start": ts(p.start), "end": ts(p.end)}
				}
				members = append(members, x)
			}
			if err := put(obj{"resourceType": "CareTeam", "id": "ct-" + e.id, "status": "active", "subject": subject,
				"encounter": ref("Encounter/" + e.id), "period": period(e.start, e.end), "participant": members,
				"managingOrganization": []obj{ref("Organization/" + w.orgs[e.org].id)}}); err != nil {
				return err
			}
		}
		for _, si := range e.srs {
			s := w.srs[si]
			if err := put(obj{"resourceType": "ServiceRequest", "id": s.id, "status": "completed", "intent": "order",
				"category": []obj{{"text": orderText[s.perfType]}}, "subject": subject, "encounter": ref("Encounter/" + e.id),
				"authoredOn": ts(s.authored), "performerType": cc(roleSystem(s.perfType), s.perfType),
				"performer": []obj{ref("Organization/" + w.orgs[s.perfOrg].id)}}); err != nil {
				return err
			}
		}
		if err := put(obj{"resourceType": "Account", "id": "acct-" + e.id, "status": "active", "subject": []obj{subject},
			"servicePeriod": period(e.start, e.end), "owner": ref("Organization/billing")}); err != nil {
			return err
		}
		if e.class == "IMP" && e.billAt.Before(logEnd) {
			if err := put(obj{"resourceType": "Claim", "id": "claim-" + e.id, "status": "active",
				"type": cc("http://terminology.hl7.org/CodeSystem/claim-type", "institutional"), "use": "claim",
				"patient": subject, "created": ts(e.billAt), "provider": ref("Organization/billing"),
				"priority":       cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
				"insurance":      []obj{{"sequence": 1, "focal": true, "coverage": obj{"display": "self-pay"}}},
				"billablePeriod": period(e.start, e.end)}); err != nil {
				return err
			}
		}
	}
	if _, err := io.WriteString(bw, "]}\n"); err != nil {
		return err
	}
	return bw.Flush()
}

var orderText = map[string]string{
	roleLab: "Laboratory panel", roleRadiology: "Imaging study", rolePharmacist: "Medication dispense",
	roleDoctor: "Consultation",
}
