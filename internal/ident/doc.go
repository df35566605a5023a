// Package ident names the things phivault's domains pass between them:
// FHIR references ("Patient/p1") and the owners of data-encryption keys
// ("Patient/p1", "Joint/<h>", "org", "system/<name>"), with constructors
// and parsers in place of string literals.
//
// An owner is also a reference for patients: the owner of every resource
// in a patient's compartment is the patient's reference. The other
// owners are not references: a joint owner stands for several patients
// (ADR 0019), "org" for data outside any compartment, and a system owner
// names a key the server itself uses (never a DEK).
//
// ident is a leaf: it imports only the standard library, so every
// package may use it.
package ident
