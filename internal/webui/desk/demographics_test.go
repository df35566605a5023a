package desk

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/phivault/phivault/internal/webui/chartview"
)

const syntheaPatient = `{"resourceType":"Patient","id":"p",
 "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthPlace","valueAddress":{"city":"Boston"}}],
 "name":[{"use":"official","family":"Martin","given":["Dmitri","Ivan"],"prefix":["Mr."]},{"use":"maiden","family":"Old"}],
 "telecom":[{"system":"phone","value":"555-0100","use":"home"},{"system":"phone","value":"555-0199","use":"work"},{"system":"email","value":"d@example.org"}],
 "gender":"male","birthDate":"1970-03-04",
 "address":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/geolocation","extension":[{"url":"latitude","valueDecimal":42.1}]}],
   "line":["1 Main St","Apt 2"],"city":"Boston","state":"MA","postalCode":"02110","country":"US"},{"city":"Salem"}]}`

func parse(t *testing.T) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal([]byte(syntheaPatient), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestApplyKeepsWhatTheFormDoesNotShow (penetration test: saving the
// demographics form unchanged dropped the name's prefix, the address's
// state, country and geolocation, and the phone's use).
func TestApplyKeepsWhatTheFormDoesNotShow(t *testing.T) {
	p := parse(t)
	d := demographicsOf(chartview.Obj(parse(t)))
	d.apply(p)
	// Round trip through JSON: the form's given names are strings.
	b, _ := json.Marshal(p)
	var got map[string]any
	_ = json.Unmarshal(b, &got)
	if want := parse(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("an unchanged save changed the patient:\n got %s\nwant %s", b, syntheaPatient)
	}

	// Edits touch only what they name.
	p = parse(t)
	d.Family, d.Given, d.Phone, d.Line, d.City = "Martín", "Dima", "555-0101", "2 Main St", ""
	d.apply(p)
	name := p["name"].([]any)[0].(map[string]any)
	if name["family"] != "Martín" || !reflect.DeepEqual(name["given"], []string{"Dima"}) || !reflect.DeepEqual(name["prefix"], []any{"Mr."}) {
		t.Errorf("name: %v", name)
	}
	tel := p["telecom"].([]any)
	if first := tel[0].(map[string]any); first["value"] != "555-0101" || first["use"] != "home" || len(tel) != 3 {
		t.Errorf("telecom: %v", tel)
	}
	addr := p["address"].([]any)[0].(map[string]any)
	if !reflect.DeepEqual(addr["line"], []any{"2 Main St", "Apt 2"}) || addr["city"] != nil || addr["state"] != "MA" || addr["country"] != "US" || addr["extension"] == nil {
		t.Errorf("address: %v", addr)
	}
	if len(p["address"].([]any)) != 2 || len(p["name"].([]any)) != 2 || p["extension"] == nil {
		t.Errorf("other names, addresses or extensions lost: %v", p)
	}

	// Emptied: the phone goes, the others stay.
	d.Phone = ""
	d.apply(p)
	if tel := p["telecom"].([]any); len(tel) != 2 || tel[0].(map[string]any)["value"] != "555-0199" {
		t.Errorf("telecom after removing the phone: %v", tel)
	}
}
