package httpapi

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/search"
)

// capabilities serves the CapabilityStatement: exactly the interactions
// and search parameters this server implements, per resource type.
func (s *Server) capabilities(w http.ResponseWriter, r *http.Request) error {
	reg := s.rec.Registry()
	interactions := []any{}
	for _, code := range []string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"} {
		interactions = append(interactions, map[string]any{"code": code})
	}
	common := []any{
		map[string]any{"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"},
		map[string]any{"name": "_lastUpdated", "type": "date", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"},
	}
	types := fhir.R4Types()
	sort.Strings(types)
	var resources []any
	for _, t := range types {
		if !fhir.IsStorableType(t) {
			continue
		}
		if t == "AuditEvent" {
			// Served from the audit log (package auditapi), not the record.
			if res := s.auditLog.Capability(); res != nil {
				resources = append(resources, res)
			}
			continue
		}
		params := append([]any{}, common...)
		ps := reg.Params(t)
		sort.Slice(ps, func(i, j int) bool { return ps[i].Code < ps[j].Code })
		for _, p := range ps {
			doc := p.Documentation()
			if p.Type == search.Reference {
				doc = referenceParamDoc
			}
			params = append(params, map[string]any{"name": p.Code, "type": p.Type.String(), "documentation": doc})
		}
		res := map[string]any{
			"type":              t,
			"interaction":       interactions,
			"versioning":        "versioned-update",
			"readHistory":       true,
			"updateCreate":      true,
			"conditionalRead":   "full-support", // If-None-Match and If-Modified-Since (fhir.go notModified)
			"conditionalCreate": true,
			"conditionalUpdate": true,
			"conditionalDelete": "single",
			"searchParam":       params,
		}
		if inc := includes(reg, t); len(inc) > 0 {
			res["searchInclude"] = inc
		}
		if rev := revIncludes(reg, t); len(rev) > 0 {
			res["searchRevInclude"] = rev
		}
		if len(ps) > 0 {
			res["documentation"] = searchDoc
		}
		if t == "Subscription" && s.subs != nil {
			res["documentation"] = "R4 Subscriptions delivered on the owner's authorization (the principal of the latest write): " +
				"criteria is a search of one type; channel.type rest-hook (https; payload absent = POST without body, " +
				"application/fhir+json = PUT [endpoint]/[type]/[id]; channel.header sent) or websocket (" + WebsocketPath +
				": bind {id} / bound {id} / ping {id}). Status requested becomes active after a handshake; error after repeated failures."
		}
		ops := []any{
			map[string]any{"name": "meta", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-meta"},
			map[string]any{"name": "meta-add", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-meta-add"},
			map[string]any{"name": "meta-delete", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-meta-delete"},
		}
		if t == "Patient" {
			ops = append(ops,
				map[string]any{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
				map[string]any{"name": "erase", "definition": s.baseURL + "/fhir/OperationDefinition/Patient-erase"},
			)
		}
		if s.bulk != nil && t == "Patient" { // bulk.go: FHIR Bulk Data Access IG v2
			ops = append(ops, map[string]any{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"})
		}
		if s.bulk != nil && t == "Group" {
			ops = append(ops, map[string]any{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"})
		}
		res["operation"] = append(ops, terminologyOps(t)...) // terminology.go
		resources = append(resources, res)
	}
	cs := map[string]any{
		"resourceType":   "CapabilityStatement",
		"status":         "active",
		"date":           time.Now().UTC().Format("2006-01-02"),
		"kind":           "instance",
		"software":       map[string]any{"name": "phivault", "version": s.version},
		"implementation": map[string]any{"description": "phivault FHIR R4 server (encrypted at rest, audited)", "url": s.baseURL + "/fhir"},
		"fhirVersion":    "4.0.1",
		"format":         []any{"application/fhir+json", "application/json", "json"},
		// JSON Patch and FHIRPath Patch (a Parameters body), fhir_patch.go.
		"patchFormat": []any{"application/json-patch+json", "application/fhir+json"},
		"rest": []any{map[string]any{
			"mode":        "server",
			"security":    s.restSecurity(),
			"resource":    resources,
			"interaction": []any{map[string]any{"code": "transaction"}, map[string]any{"code": "batch"}, map[string]any{"code": "history-system"}, map[string]any{"code": "search-system"}},
			// System search (GET /fhir?_type=...) takes these across types;
			// Patient/{id}/{type} searches the R4 Patient compartment
			// (search_system.go).
			"searchParam": common,
			"compartment": []any{"http://hl7.org/fhir/CompartmentDefinition/patient"},
			"operation":   []any{map[string]any{"name": "meta", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-meta"}},
		}},
	}
	if s.bulk != nil {
		// FHIR Bulk Data Access IG v2: system, Patient and Group $export
		// for SMART Backend Services clients with a registered purpose of
		// use (bulk.go, ADR 0049).
		cs["instantiates"] = []any{"http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"}
		rest := cs["rest"].([]any)[0].(map[string]any)
		rest["operation"] = append(rest["operation"].([]any),
			map[string]any{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"})
	}
	if s.subs != nil {
		ws := strings.Replace(strings.Replace(s.baseURL, "https://", "wss://", 1), "http://", "ws://", 1)
		rest := cs["rest"].([]any)[0].(map[string]any)
		rest["extension"] = []any{map[string]any{
			"url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket", "valueUri": ws + WebsocketPath}}
	}
	writeJSON(w, r, http.StatusOK, cs)
	return nil
}

// referenceParamDoc documents, on every reference search parameter,
// the modifiers and chaining it supports.
const referenceParamDoc = "Type/id, id or an absolute URL. Modifiers :[type], :identifier (matches Reference.identifier) and :missing. " +
	"Chainable one or two levels deep (subject:Patient.identifier=s|v, patient.name=x); reverse chaining with _has:[this type]:[this parameter]:[parameter]. " +
	"A chain's inner search is a search of the caller, narrowed by authorization, and may find at most 500 resources (more is refused as too-costly)."

// searchDoc documents the search features of a resource type that the
// CapabilityStatement has no element for.
const searchDoc = "_include and _revinclude (with :iterate, the * wildcard and a target type) return only resources the caller may read, " +
	"at most 1000 per page and :iterate to 3 passes (a page that left some out ends with an OperationOutcome entry). " +
	"_sort accepts _id, _lastUpdated, date, string, token, reference and uri parameters (not number, quantity or composite). " +
	"String, token, reference, uri values and birth dates are stored as keyed hashes, which have no order: such a sort decrypts the matches the caller may read and orders them, " +
	"for a search matching at most 1000 resources (more is refused as too-costly: narrow the search)."

// includes lists the _include values of resources of typ: the wildcard
// and each supported reference parameter.
func includes(reg *search.Registry, typ string) []string {
	ps := reg.Follow(search.Include{Source: typ}, typ)
	if len(ps) == 0 {
		return nil
	}
	out := []string{"*"}
	for _, p := range ps {
		out = append(out, typ+":"+p.Code)
	}
	return out
}

// revIncludes lists the _revinclude values for resources of typ: every
// supported reference parameter that may refer to typ.
func revIncludes(reg *search.Registry, typ string) []string {
	var out []string
	for _, p := range reg.FollowBack(search.Include{Source: "*"}, typ) {
		out = append(out, p.Base+":"+p.Code)
	}
	return out
}

// oauthURIs is the SMART extension that names the authorization
// server's endpoints in a CapabilityStatement (SMART App Launch 1.0,
// still read by clients alongside /.well-known/smart-configuration).
const oauthURIs = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

// restSecurity is rest.security: bearer API tokens always; with the
// SMART authorization server, the SMART-on-FHIR service coding, its
// endpoints (oauth-uris) and where its discovery document is.
func (s *Server) restSecurity() map[string]any {
	sec := map[string]any{
		"cors":        len(s.corsOrigins) > 0, // cors.go
		"description": "Bearer API tokens; every access is audited before the response.",
	}
	if s.smart == nil {
		return sec
	}
	c := s.smart.Configuration()
	var uris []any
	for _, u := range []struct{ name, uri string }{
		{"authorize", c.AuthorizationEndpoint}, {"token", c.TokenEndpoint},
		{"introspect", c.IntrospectionEndpoint}, {"revoke", c.RevocationEndpoint},
	} {
		if u.uri != "" {
			uris = append(uris, map[string]any{"url": u.name, "valueUri": u.uri})
		}
	}
	sec["extension"] = []any{map[string]any{"url": oauthURIs, "extension": uris}}
	sec["service"] = []any{map[string]any{
		"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
			"code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}},
		"text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
	}}
	sec["description"] = "Bearer API tokens, or SMART on FHIR access tokens (OAuth 2.0; endpoints and capabilities in " +
		s.baseURL + "/.well-known/smart-configuration); every access is audited before the response."
	return sec
}
