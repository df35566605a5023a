package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/ident"
)

// Proxy access (HIPAA §164.502(g), personal representatives): a parent
// or carer reads a patient's record through an account of role patient
// whose fhirUser is a RelatedPerson of that patient carrying the proxy
// grant extension:
//
//	{"url": ProxyExtension, "extension": [
//	   {"url": "proof", "valueString": "birth certificate seen"}]}
//
// The grant holds while the RelatedPerson is active and its period
// covers the time. The policies decide what a proxy may read
// ("patient-proxy-read": the patient's record, bar what the deny rules
// keep from anyone but the patient: sensitive categories, 42 CFR Part 2,
// and a Consent of the patient that names the RelatedPerson), and who
// may write a grant ("proxy-grant"): the patient, the front desk with
// the proof they checked, service credentials.

// ProxyExtension is the URL of the proxy grant extension on a
// RelatedPerson.
const ProxyExtension = "https://phivault.dev/fhir/StructureDefinition/proxy-access"

// proxyGrant reads a RelatedPerson body: whether it carries the proxy
// grant extension, and whether that names a non-empty proof.
func proxyGrant(body []byte) (grant, proof bool, err error) {
	var rp struct {
		Extension []struct {
			URL       string `json:"url"`
			Extension []struct {
				URL         string `json:"url"`
				ValueString string `json:"valueString"`
			} `json:"extension"`
		} `json:"extension"`
	}
	if err := json.Unmarshal(body, &rp); err != nil {
		return false, false, fmt.Errorf("reading a RelatedPerson's proxy grant: %w", ErrUndecidable)
	}
	for _, x := range rp.Extension {
		if x.URL != ProxyExtension {
			continue
		}
		grant = true
		for _, sub := range x.Extension {
			if sub.URL == "proof" && strings.TrimSpace(sub.ValueString) != "" {
				proof = true
			}
		}
	}
	return grant, proof, nil
}

// ProxyPatient returns the patient ("Patient/<id>") the RelatedPerson
// fhirUser holds an active proxy grant for, or "" for none: what the
// audit log's patient view of a proxy account is scoped to.
func (a *Authorizer) ProxyPatient(ctx context.Context, fhirUser string) (string, error) {
	return a.loadProxyFacts(ctx, fhirUser, a.now())
}

// loadProxyFacts returns the patient owner the RelatedPerson fhirUser
// holds an active proxy grant for ("" for none).
func (a *Authorizer) loadProxyFacts(ctx context.Context, fhirUser string, now time.Time) (string, error) {
	typ, id := splitRef(fhirUser)
	if typ != "RelatedPerson" || id == "" {
		return "", nil
	}
	f, found, err := a.src.Resource(ctx, typ, id)
	if err != nil {
		return "", fmt.Errorf("loading %s: %w: %w", fhirUser, ErrUndecidable, err)
	}
	if !found || f.Tampered || f.JSON == nil {
		return "", nil // no grant (a tampered one grants nothing)
	}
	var rp struct {
		Active  *bool     `json:"active"`
		Patient reference `json:"patient"`
		Period  *period   `json:"period"`
	}
	if err := json.Unmarshal(f.JSON, &rp); err != nil {
		return "", fmt.Errorf("reading %s: %w", fhirUser, ErrUndecidable)
	}
	grant, _, err := proxyGrant(f.JSON)
	if err != nil || !grant || (rp.Active != nil && !*rp.Active) || !inPeriod(rp.Period, now) {
		return "", err
	}
	// The grant is for the compartment the RelatedPerson is stored in,
	// which is the patient it names.
	if !strings.HasPrefix(f.Owner, ident.PatientPrefix) || rp.Patient.Reference != f.Owner {
		return "", nil
	}
	return f.Owner, nil
}
