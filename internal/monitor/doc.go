// Package monitor is privacy and intrusion monitoring (issue 16, DESIGN
// §9, ADR 0045): it reads accesses of workforce members to patients, from
// phivault's own audit log or from another system's access log (FHIR
// AuditEvent NDJSON in the IHE BALP shape), looks for an explanation of
// each access in the hospital's data (explanation-based auditing, Fabbri
// and LeFevre, VLDB 2011), runs detectors over what is left and over the
// authentication events, and ranks the resulting alerts with a combined
// score so that a privacy officer reads the worst first.
//
// The package is pure: it holds no database and no keys. A [Directory]
// is the hospital's directory and care relationships; [Event] is one
// normalised access or authentication event; an [Engine] consumes events
// in time order and yields [Alert]s. Storage, sealing and delivery of
// alerts live in the store and in internal/app.
package monitor
