package monitor

import (
	"fmt"
	"time"
)

// The test hospital: a root, Medicine with its Cardiology ward, Surgery.
//
//	Practitioner/nurse   Cardiology, nurse, day shift 07-19 every day; lives 12 Oak Street, 1000
//	Practitioner/doc     Medicine, doctor, no roster
//	Practitioner/surg    Surgery, doctor, day shift
//	Practitioner/bill    Finance, billing
//	Practitioner/rad     Radiology, radiologist
//	Practitioner/cowork  Cardiology, nurse (also a patient: Patient/cowork)
//	Practitioner/far     Surgery, nurse (also a patient: Patient/far)
const (
	nurse  = "Practitioner/nurse"
	doc    = "Practitioner/doc"
	surg   = "Practitioner/surg"
	bill   = "Practitioner/bill"
	rad    = "Practitioner/rad"
	cowork = "Practitioner/cowork"
	far    = "Practitioner/far"
)

// t0 is a Monday at 10:00 UTC, inside the day shift.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func dayShift() []Shift {
	return []Shift{{Start: 7 * time.Hour, End: 19 * time.Hour}}
}

func testDirectory() *Directory {
	d := NewDirectory()
	d.Departments["Organization/root"] = Department{Ref: "Organization/root"}
	d.Departments["Organization/med"] = Department{Ref: "Organization/med", PartOf: "Organization/root"}
	d.Departments["Organization/cardio"] = Department{Ref: "Organization/cardio", PartOf: "Organization/med"}
	d.Departments["Organization/surgery"] = Department{Ref: "Organization/surgery", PartOf: "Organization/root"}
	d.Departments["Organization/finance"] = Department{Ref: "Organization/finance", PartOf: "Organization/root"}
	d.Departments["Organization/radiology"] = Department{Ref: "Organization/radiology", PartOf: "Organization/root"}
	person := func(ref, family, given, birth string, addr Address, roles ...Role) {
		d.Practitioners[ref] = &Person{Ref: ref, Family: family, Given: []string{given}, BirthDate: birth, Addresses: []Address{addr}, Roles: roles}
	}
	home := Address{Line: "12 Oak St.", City: "Springfield", PostalCode: "1000"}
	person(nurse, "Okonkwo", "Ada", "1980-01-01", home,
		Role{Ref: "PractitionerRole/nurse", Organization: "Organization/cardio", Codes: []string{"nurse"}, Shifts: dayShift()})
	person(doc, "Lindqvist", "Bo", "1970-02-02", Address{Line: "1 Elm Road", City: "Springfield", PostalCode: "2000"},
		Role{Ref: "PractitionerRole/doc", Organization: "Organization/med", Codes: []string{"doctor"}})
	person(surg, "Marsh", "Cy", "1971-03-03", Address{Line: "3 Pine Road", City: "Shelbyville", PostalCode: "3000"},
		Role{Ref: "PractitionerRole/surg", Organization: "Organization/surgery", Codes: []string{"doctor"}, Shifts: dayShift()})
	person(bill, "Tanaka", "Di", "1972-04-04", Address{Line: "4 Ash Road", City: "Shelbyville", PostalCode: "3000"},
		Role{Ref: "PractitionerRole/bill", Organization: "Organization/finance", Codes: []string{"billing"}})
	person(rad, "Moreau", "Ed", "1973-05-05", Address{Line: "5 Fir Road", City: "Ogdenville", PostalCode: "4000"},
		Role{Ref: "PractitionerRole/rad", Organization: "Organization/radiology", Codes: []string{"radiologist"}})
	person(cowork, "Castellanos", "Flo", "1985-06-06", Address{Line: "6 Yew Road", City: "Ogdenville", PostalCode: "4000"},
		Role{Ref: "PractitionerRole/cowork", Organization: "Organization/cardio", Codes: []string{"nurse"}})
	person(far, "Abernathy", "Gus", "1986-07-07", Address{Line: "7 Oak Lane", City: "Ogdenville", PostalCode: "4000"},
		Role{Ref: "PractitionerRole/far", Organization: "Organization/surgery", Codes: []string{"nurse"}})

	patient := func(ref, family, given, birth string, addr Address, labels ...string) {
		d.Patients[ref] = &PatientInfo{Ref: ref, Family: family, Given: []string{given}, BirthDate: birth, Addresses: []Address{addr}, Labels: labels}
	}
	patient("Patient/self", "Okonkwo", "Ada", "1980-01-01", home)
	patient("Patient/family", "OKONKWO", "Chi", "2010-05-05", Address{Line: "12 Oak Street", City: "Springfield", PostalCode: "1000"})
	patient("Patient/familypostal", "Okonkwo", "Eze", "1950-05-05", Address{Line: "99 Birch Road", City: "Springfield", PostalCode: "1000"})
	patient("Patient/neighbour", "Quill", "Hal", "1960-08-08", Address{Line: "14 Oak Street", City: "Springfield", PostalCode: "1000"})
	patient("Patient/cowork", "Castellanos", "Flo", "1985-06-06", Address{Line: "6 Yew Road", City: "Ogdenville", PostalCode: "4000"})
	patient("Patient/far", "Abernathy", "Gus", "1986-07-07", Address{Line: "7 Oak Lane", City: "Ogdenville", PostalCode: "4000"})
	patient("Patient/vip", "Starr", "Ivy", "1990-09-09", Address{Line: "1 Hill Road", City: "Capital", PostalCode: "9000"}, "V")
	for i := range 400 {
		patient(fmt.Sprintf("Patient/p%d", i), fmt.Sprintf("Stranger%d", i), "Jo", "1999-01-01",
			Address{Line: fmt.Sprintf("%d Far Road", i), City: "Elsewhere", PostalCode: fmt.Sprintf("7%03d", i)})
	}
	return d
}

// access is a successful read.
func access(t time.Time, user, patient string) Event {
	return Event{Time: t, Kind: KindAccess, Outcome: OutcomeSuccess, User: user, Patient: patient, Action: "read",
		Address: "10.0.0.1", Ref: fmt.Sprintf("AuditEvent/%s-%s-%d", user, patient, t.Unix())}
}
