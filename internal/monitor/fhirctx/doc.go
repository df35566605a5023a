// Package fhirctx reads the context of an ingested access log: a FHIR R4
// Bundle (any type) holding a hospital's directory and care
// relationships, into a [monitor.Directory].
//
// It reads Organization (departments, partOf), Practitioner (name,
// address, birthDate), PractitionerRole (practitioner, organization,
// code, specialty, availableTime), Patient (name, address, birthDate,
// meta.security), Encounter (subject, participant, period,
// serviceProvider), CareTeam (subject, participant member,
// managingOrganization, period), ServiceRequest (subject, performerType,
// performer, requester, occurrence, authoredOn), Claim (patient,
// provider, billablePeriod, created) and Account (subject, owner,
// servicePeriod). Other resource types are counted and skipped.
//
// References may be relative ("Practitioner/1"), absolute
// ("https://ehr.example/fhir/Practitioner/1"), versioned
// (".../_history/2") or a Bundle entry's fullUrl ("urn:uuid:…", as
// Synthea writes them); all are resolved to "Type/id". A participant
// named through a PractitionerRole counts as that role's Practitioner.
//
// The Bundle is streamed: entries are decoded one at a time, so memory
// is the Directory, not the file. Input is untrusted: sizes are bounded
// ([Limits]) and errors name the entry's position, never its content.
package fhirctx
