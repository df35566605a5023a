package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// TestE2ECapabilitySecurity: the CapabilityStatement's rest.security
// names the SMART-on-FHIR service, the authorization server's
// endpoints (oauth-uris, the same as the discovery document's) and the
// discovery document, besides bearer API tokens.
func TestE2ECapabilitySecurity(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		r := s.Do(t, "GET", "/fhir/metadata", nil, apitest.H{"Authorization": apitest.NoAuth}).Want(t, http.StatusOK)
		var cs struct {
			Rest []struct {
				Security struct {
					Description string `json:"description"`
					Service     []struct {
						Coding []struct {
							System string `json:"system"`
							Code   string `json:"code"`
						} `json:"coding"`
					} `json:"service"`
					Extension []struct {
						URL       string `json:"url"`
						Extension []struct {
							URL      string `json:"url"`
							ValueURI string `json:"valueUri"`
						} `json:"extension"`
					} `json:"extension"`
				} `json:"security"`
			} `json:"rest"`
		}
		if err := json.Unmarshal(r.Body, &cs); err != nil || len(cs.Rest) != 1 {
			t.Fatalf("metadata: %v", err)
		}
		sec := cs.Rest[0].Security
		smartCoded := false
		for _, sv := range sec.Service {
			for _, c := range sv.Coding {
				if c.System == "http://terminology.hl7.org/CodeSystem/restful-security-service" && c.Code == "SMART-on-FHIR" {
					smartCoded = true
				}
			}
		}
		if !smartCoded {
			t.Fatal("rest.security.service has no SMART-on-FHIR coding")
		}
		if !strings.Contains(sec.Description, "/.well-known/smart-configuration") || !strings.Contains(sec.Description, "API tokens") {
			t.Fatalf("rest.security.description %q", sec.Description)
		}
		var conf struct {
			TokenEndpoint string `json:"token_endpoint"`
		}
		d := s.Do(t, "GET", "/.well-known/smart-configuration", nil, apitest.H{"Authorization": apitest.NoAuth}).Want(t, http.StatusOK)
		if err := json.Unmarshal(d.Body, &conf); err != nil || conf.TokenEndpoint == "" {
			t.Fatalf("smart-configuration: %v", err)
		}
		token := ""
		for _, e := range sec.Extension {
			if e.URL != "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
				continue
			}
			for _, u := range e.Extension {
				if u.URL == "token" {
					token = u.ValueURI
				}
			}
		}
		if token != conf.TokenEndpoint {
			t.Fatalf("oauth-uris token %q, discovery token_endpoint %q", token, conf.TokenEndpoint)
		}
	})
}
