// Package web is the HTTP kernel shared by the two front ends: the FHIR,
// admin, login and SMART APIs (internal/httpapi) and the server-rendered
// web UI (internal/webui). It imports neither of them (ADR 0025).
//
// # Plumbing
//
// The request id ([RequestID], assigned once per request by httpapi's
// outermost middleware), the client address ([ClientAddr], [ClientIP]:
// the peer, never a forwarded header), the session cookie
// ([SetSessionCookie], [ClearSessionCookie], [SessionToken]), the
// headers every response carries ([SecurityHeaders]), and the notes a
// handler leaves for the attempt audit at the root of the middleware
// ([NoteAgent], [NoteRefusal], [NoteRoute], [NoteBackendFailure]; ADR
// 0017). The notes are a no-op outside a request that [WithNotes]
// prepared.
//
// # Errors
//
// Handlers are [HandlerFunc]s that return their error; an [Adapter]
// maps it to the one error type, [Error], logs its internal cause with
// the request id, and writes its public part with a [Renderer]:
// [Outcome] (FHIR OperationOutcome), [JSON], [OAuth] (RFC 6749 §5.2) or
// a front end's HTML page ([HTML]).
//
// # Security invariants
//
//   - Error.Err (the internal cause) is logged, never written to a
//     response; every renderer writes only Msg, Code, Title, Issues
//     and Header, which must be safe to show (no PHI, secret, token or
//     value the client sent).
//   - An error nobody mapped is 500 "internal error" ([Fallback]).
//   - The session cookie is always __Host-, Secure, HttpOnly,
//     SameSite=Strict, Path=/, and cleared with the same attributes.
//   - Forwarded headers are never trusted for the client address.
package web
