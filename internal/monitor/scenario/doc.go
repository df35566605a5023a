// Package scenario generates a hospital and its access log with injected
// misuse and the ground truth, to evaluate privacy and intrusion
// monitoring (issue 16, item 5). No public labelled access log exists;
// this one follows the literature: explanation-based auditing (Fabbri
// and LeFevre, VLDB 2011), the access patterns of Boxwala et al. (JAMIA
// 2011), snooping on co-workers, family and neighbours (Menon et al.),
// and the categories privacy products report (Protenus, FairWarning).
//
// It writes the files a hospital would hand over, so that an evaluation
// runs the real path (files, parsers, engine, alerts) and never reaches
// into the engine:
//
//   - the context, one FHIR R4 Bundle (type collection): the hospital,
//     departments and units (Organization.partOf), Practitioners (name,
//     birth date, address) with a PractitionerRole each (organization,
//     code, availableTime: day, evening and night shifts on five days
//     of the week), Patients (some labelled V or R in meta.security;
//     some are workforce members, some their family or neighbours),
//     Encounters (emergency, clinic, inpatient; participants with their
//     type; serviceProvider), CareTeams of the inpatient stays,
//     ServiceRequests to the laboratory, radiology and pharmacy and
//     consults from other departments (performerType, performer), an
//     Account per encounter and a Claim per stay;
//   - the log, FHIR R4 AuditEvent NDJSON in the IHE BALP shape, roughly
//     time-ordered: type rest with the restful-interaction subtype and
//     the CRUDE action for accesses, the patient as an entity of role 1;
//     DICOM 110114 User Authentication with subtype 110122 Login or
//     110123 Logout for sign-in, a second subtype of [SystemAction]
//     saying which step (login-password, mfa-verify, token, logout);
//     a bulk export as subtype operation plus export, action E, with
//     every patient as an entity; outcome 0, or 4 with outcomeDesc
//     denied, not-found or failure. The requestor agent names the user
//     (who), the account name tried (altId, and name for an account that
//     does not exist), the network address, and the session or token id
//     in policy with the [JTIPrefix], where IHE BALP puts the jti of the
//     OAuth token that authorised the request;
//   - the truth, TSV: Practitioner/<id>, Patient/<id> or empty, the
//     monitor.Category, the address of an attack.
//
// # What is legitimate
//
// Encounter participants and care team members during the stay (the
// attending on rounds during his shift), nurses of the unit on shift,
// the registration clerk at arrival, the laboratory, radiology and
// pharmacy on the orders sent to them, the consultant of the department
// asked, billing one to four weekdays after discharge. And the noise
// that makes detection hard: nurses covering a shift on another unit
// outside their roster (named on the encounter or the care team for
// that shift), charting up to 40 minutes after a shift, a doctor
// reviewing results a day or two after a clinic visit, workforce
// members treated in their own department by colleagues, family of
// workforce members admitted to their unit, VIP patients with ordinary
// care, common surnames shared by chance (family detection needs the
// address too), mistyped passwords, an occasional second-factor
// failure, refused update or stale link, users moving between
// workstations; a mass-casualty evening that triples emergency arrivals
// (explained volume); and Options.Unexplained legitimate chart openings
// in 1,000 (default 10) that nothing in the data explains, as in real
// logs, so that an engine alerting on every unexplained access loses
// precision. Nobody opens their own chart legitimately.
//
// # What is misuse
//
// Options.Incidents incidents of each of [Categories], in the last two
// thirds of the log (the first third is everyone's history): family,
// neighbour, co-worker, other workforce, self, VIP or restricted
// record, each one chart opened with no relationship in the data at
// any time; off hours (a nurse opening charts of her own unit three
// hours or more away from her roster); volume (25 to 45 unrelated
// patients over a shift); browsing (12 to 25 in half an hour); a bulk
// export of 40 to 150; credential stuffing (many account names, most
// unknown, from one address in minutes) and password spraying (every
// known account once, slowly); repeated second-factor failures; refused
// tokens; enumeration (reads of patient ids that do not exist); many
// denied requests; one session from two addresses. Pair targets are
// drawn among patients with no relationship to the user (see
// world.related), so that the truth is never explainable.
//
// # Determinism and memory
//
// The same [Options] give the same bytes: every part draws from its own
// seeded stream (one per day for the log) and nothing iterates a map.
// The directory and relationships are held in memory; the log is built
// one day at a time ([Scenario.WriteEvents]), so a log of millions of
// events needs the memory of one day.
//
// The data is synthetic: names, addresses and dates are drawn from
// tables and no real person is described.
package scenario
