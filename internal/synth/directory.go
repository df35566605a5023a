package synth

import (
	"fmt"
	"math/rand/v2"
)

// practitionersPerOrg is the number of clinicians on each organization's staff.
const practitionersPerOrg = 4

// directorySeed fixes the provider directory independently of Options.Seed.
const directorySeed = 0x70686976 // "phiv"

type organization struct {
	id, locID, name, phone string
	place                  place
	line                   string
}

type practitioner struct {
	id, roleID, npi, family, given, gender, email string
	org                                           int
	specialty                                     code
}

// directory is the shared set of providers that patients refer to.
type directory struct {
	orgs  []organization
	pracs []practitioner
}

func newDirectory() *directory {
	r := rand.New(rand.NewPCG(directorySeed, 0))
	d := &directory{}
	for i, name := range orgNames {
		p := places[i%len(places)]
		d.orgs = append(d.orgs, organization{
			id:    newUUID(r),
			locID: newUUID(r),
			name:  name,
			phone: fmt.Sprintf("%03d%03d%04d", 617+r.IntN(300), 200+r.IntN(700), r.IntN(10000)),
			place: p,
			line:  fmt.Sprintf("%d %s", 1+r.IntN(900), streets[r.IntN(len(streets))]),
		})
	}
	for i := range len(d.orgs) * practitionersPerOrg {
		pr := practitioner{
			id:        newUUID(r),
			roleID:    newUUID(r),
			npi:       fmt.Sprintf("99999%05d", 1000+i*37),
			family:    families[r.IntN(len(families))],
			org:       i / practitionersPerOrg,
			specialty: specialties[r.IntN(len(specialties))],
		}
		if r.IntN(2) == 0 {
			pr.gender, pr.given = "female", givenFemale[r.IntN(len(givenFemale))]
		} else {
			pr.gender, pr.given = "male", givenMale[r.IntN(len(givenMale))]
		}
		pr.email = fmt.Sprintf("%s.%s%d@example.com", asciiFold(pr.given), asciiFold(pr.family), i)
		d.pracs = append(d.pracs, pr)
	}
	return d
}

func (org *organization) ident() string    { return sysSynthea + "|" + org.id }
func (org *organization) locIdent() string { return sysSynthea + "|" + org.locID }

// orgRef is the conditional reference Synthea uses for an organization.
func (d *directory) orgRef(i int) obj {
	org := &d.orgs[i]
	return ref("Organization?identifier="+org.ident(), org.name)
}

func (d *directory) locRef(i int) obj {
	org := &d.orgs[i]
	return ref("Location?identifier="+org.locIdent(), org.name)
}

func (p *practitioner) display() string { return "Dr. " + p.given + " " + p.family }

func (d *directory) pracRef(i int) obj {
	p := &d.pracs[i]
	return ref("Practitioner?identifier="+sysNPI+"|"+p.npi, p.display())
}

func (org *organization) address() obj {
	return o("line", []string{org.line}, "city", org.place.city, "state", "MA",
		"postalCode", org.place.zip, "country", "US")
}

// bundle is the batch Bundle of the whole directory, each entry guarded by
// ifNoneExist on its business identifier.
func (d *directory) bundle() obj {
	var entries []obj
	for i := range d.orgs {
		org := &d.orgs[i]
		entries = append(entries, entry("urn:uuid:"+org.id, o(
			"resourceType", "Organization",
			"id", org.id,
			"identifier", []obj{o("system", sysSynthea, "value", org.id)},
			"active", true,
			"type", []obj{concept(sysOrgType, code{"prov", "Healthcare Provider"})},
			"name", org.name,
			"telecom", []obj{o("system", "phone", "value", org.phone)},
			"address", []obj{org.address()},
		), o("method", "POST", "url", "Organization", "ifNoneExist", "identifier="+org.ident())))
	}
	for i := range d.orgs {
		org := &d.orgs[i]
		entries = append(entries, entry("urn:uuid:"+org.locID, o(
			"resourceType", "Location",
			"id", org.locID,
			"identifier", []obj{o("system", sysSynthea, "value", org.locID)},
			"status", "active",
			"name", org.name,
			"telecom", []obj{o("system", "phone", "value", org.phone)},
			"address", org.address(),
			"position", o("longitude", org.place.lon, "latitude", org.place.lat),
			"managingOrganization", d.orgRef(i),
		), o("method", "POST", "url", "Location", "ifNoneExist", "identifier="+org.locIdent())))
	}
	for i := range d.pracs {
		p := &d.pracs[i]
		org := &d.orgs[p.org]
		entries = append(entries, entry("urn:uuid:"+p.id, o(
			"resourceType", "Practitioner",
			"id", p.id,
			"identifier", []obj{o("system", sysNPI, "value", p.npi)},
			"active", true,
			"name", []obj{o("family", p.family, "given", []string{p.given}, "prefix", []string{"Dr."})},
			"telecom", []obj{o("system", "email", "value", p.email, "use", "work")},
			"address", []obj{org.address()},
			"gender", p.gender,
		), o("method", "POST", "url", "Practitioner", "ifNoneExist", "identifier="+sysNPI+"|"+p.npi)))
	}
	for i := range d.pracs {
		p := &d.pracs[i]
		org := &d.orgs[p.org]
		entries = append(entries, entry("urn:uuid:"+p.roleID, o(
			"resourceType", "PractitionerRole",
			"id", p.roleID,
			"identifier", []obj{o("system", sysSynthea, "value", p.roleID)},
			"practitioner", d.pracRef(i),
			"organization", d.orgRef(p.org),
			"code", []obj{concept(sysNUCC, p.specialty)},
			"specialty", []obj{concept(sysNUCC, p.specialty)},
			"location", []obj{d.locRef(p.org)},
			"telecom", []obj{o("system", "phone", "value", org.phone), o("system", "email", "value", p.email, "use", "work")},
		), o("method", "POST", "url", "PractitionerRole", "ifNoneExist", "identifier="+sysSynthea+"|"+p.roleID)))
	}
	return o("resourceType", "Bundle", "type", "batch", "entry", entries)
}

// asciiFold maps the diacritics used in the name tables to ASCII for e-mail
// local parts; other runes outside [A-Za-z] are dropped.
func asciiFold(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			out = append(out, byte(r))
		case r == 'á' || r == 'à' || r == 'ä' || r == 'â':
			out = append(out, 'a')
		case r == 'Á':
			out = append(out, 'A')
		case r == 'é' || r == 'è' || r == 'ë' || r == 'ê':
			out = append(out, 'e')
		case r == 'í' || r == 'ï':
			out = append(out, 'i')
		case r == 'ó' || r == 'ö' || r == 'ø':
			out = append(out, 'o')
		case r == 'Ø':
			out = append(out, 'O')
		case r == 'ú' || r == 'ü':
			out = append(out, 'u')
		case r == 'ñ':
			out = append(out, 'n')
		case r == 'ç':
			out = append(out, 'c')
		}
	}
	return string(out)
}
