package httpapi

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
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
		params := append([]any{}, common...)
		ps := reg.Params(t)
		sort.Slice(ps, func(i, j int) bool { return ps[i].Code < ps[j].Code })
		for _, p := range ps {
			params = append(params, map[string]any{"name": p.Code, "type": p.Type.String(), "documentation": p.Documentation()})
		}
		res := map[string]any{
			"type":              t,
			"interaction":       interactions,
			"versioning":        "versioned-update",
			"readHistory":       true,
			"updateCreate":      true,
			"conditionalCreate": true,
			"conditionalUpdate": true,
			"conditionalDelete": "single",
			"searchParam":       params,
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
		res["operation"] = ops
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
		"rest": []any{map[string]any{
			"mode": "server",
			"security": map[string]any{
				"cors":        len(s.corsOrigins) > 0, // cors.go
				"description": "Bearer API tokens; every access is audited before the response.",
			},
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
	if s.subs != nil {
		ws := strings.Replace(strings.Replace(s.baseURL, "https://", "wss://", 1), "http://", "ws://", 1)
		rest := cs["rest"].([]any)[0].(map[string]any)
		rest["extension"] = []any{map[string]any{
			"url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket", "valueUri": ws + WebsocketPath}}
	}
	writeJSON(w, r, http.StatusOK, cs)
	return nil
}
