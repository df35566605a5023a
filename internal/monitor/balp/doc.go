// Package balp reads another system's access log: FHIR R4 AuditEvent
// resources, one per line (NDJSON), in the shape of the IHE Basic Audit
// Log Patterns (BALP) and of DICOM/ATNA authentication events, into
// [monitor.Event]s.
//
// Mapping (liberal in what it accepts, as logs differ):
//
//   - Time: recorded.
//   - User: the requestor agent's who.reference ("Practitioner/<id>",
//     absolute or relative; a PractitionerRole is kept as such and
//     resolved by the caller); an agent without a reference gives its
//     who.identifier.value, altId or name as Login (an account name,
//     possibly one that does not exist).
//   - Address: the requestor's network.address, else any agent's.
//   - Session: the requestor's policy[0] (BALP: the token's identifier),
//     else an agent or event extension whose URL names a session.
//   - Patient: every entity whose what references a Patient, or whose
//     role is 1 (Patient) with a Patient reference; one Event per patient.
//   - Kind: DICOM 110114 User Authentication is KindLogin (110122 login,
//     or a subtype naming MFA/OTP/second factor: KindMFA; 110123 logout:
//     KindOther); a subtype or type naming a token (IUA ITI-71,
//     "token", "introspect") is KindToken; an event with a patient is
//     KindAccess; anything else KindOther.
//   - Action: the restful-interaction subtype code (read, vread,
//     search-type, create...), "export" for a Bulk Data export, else the
//     action letter (C create, R read, U update, D delete, E execute).
//   - Bulk: an export, $everything, or an event naming more than
//     [BulkPatients] patients.
//   - Outcome: "0" success; otherwise OutcomeNotFound when outcomeDesc
//     says not found (or 404), OutcomeDenied when it says forbidden,
//     denied or unauthorized (401, 403) or for a failed access, else
//     OutcomeFailure.
//   - Purpose: purposeOfEvent (event or requestor agent) code; ETREAT
//     (and BTG) mark BreakGlass.
//   - Ref: "AuditEvent/<id>".
//
// Input is untrusted: a line is bounded ([MaxLine]), entities per event
// are bounded, and errors name the line number, never its content.
package balp
