package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

// sd builds a minimal base StructureDefinition of typ with elements.
func sd(t *testing.T, kind, typ string, elements ...element) structureDefinition {
	t.Helper()
	d := structureDefinition{
		ResourceType: "StructureDefinition", URL: coreURL + typ, FHIRVersion: "4.0.1",
		Kind: kind, Type: typ, Derivation: "specialization",
	}
	d.Snapshot.Element = append([]element{{Path: typ}}, elements...)
	return d
}

func el(path string, min int, types ...string) element {
	e := element{Path: path, Min: min}
	for _, c := range types {
		e.Type = append(e.Type, struct {
			Code string `json:"code"`
		}{c})
	}
	return e
}

func TestBuild(t *testing.T) {
	defs := []structureDefinition{
		sd(t, "complex-type", "Extension",
			el("Extension.extension", 0, "Extension"),
			el("Extension.url", 1, "http://hl7.org/fhirpath/System.String"),
			el("Extension.value[x]", 0, "string", "Narrative", "Coding")),
		sd(t, "complex-type", "Narrative",
			el("Narrative.status", 1, "code"),
			el("Narrative.div", 1, "xhtml")),
		sd(t, "complex-type", "Coding", el("Coding.code", 0, "code")),
		sd(t, "resource", "Thing",
			el("Thing.text", 0, "Narrative"),
			el("Thing.contained", 0, "Resource"),
			el("Thing.modifierExtension", 0, "Extension"),
			el("Thing.status", 1, "code"),
			el("Thing.code", 0, "Coding"),
			el("Thing.item", 0, "BackboneElement"),
			el("Thing.item.id", 0, "http://hl7.org/fhirpath/System.String"),
			el("Thing.item.linkId", 1, "string"),
			el("Thing.item.answer[x]", 1, "boolean", "Coding"),
			element{Path: "Thing.item.item", ContentReference: "#Thing.item"},
			el("Thing.plain", 0, "BackboneElement"),
			el("Thing.plain.note", 0, "string")),
		// Profiles and abstract types are ignored.
		{ResourceType: "StructureDefinition", URL: "http://example.org/p", Kind: "resource", Type: "Thing", Derivation: "constraint"},
	}
	tab, err := build(defs)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(tab.Nodes)
	want := map[string]*Node{
		"Extension": {Required: []string{"url"}, Children: map[string]string{"valueNarrative": "Narrative"}},
		"Narrative": {Required: []string{"status", "div"}},
		"Thing": {Required: []string{"status"}, Children: map[string]string{
			"text": "Narrative", "contained": "Resource", "item": "Thing.item",
		}},
		"Thing.item": {
			Required: []string{"linkId", "answer[x]"},
			Choices:  map[string][]string{"answer[x]": {"answerBoolean", "answerCoding"}},
			Children: map[string]string{"item": "Thing.item"},
		},
	}
	if !reflect.DeepEqual(tab.Nodes, want) {
		wantJSON, _ := json.Marshal(want)
		t.Errorf("nodes:\n got %s\nwant %s", got, wantJSON)
	}
	if tab.resources != 1 {
		t.Errorf("resources = %d, want 1", tab.resources)
	}
}

func TestBuildRejectsUnexpected(t *testing.T) {
	tests := map[string]structureDefinition{
		"extension of another type": sd(t, "resource", "Thing", el("Thing.extension", 0, "Coding")),
		"slice":                     sd(t, "resource", "Thing", element{Path: "Thing.status", SliceName: "s", Min: 1}),
		"orphan":                    sd(t, "resource", "Thing", el("Thing.a.b", 1, "string")),
		"dangling reference":        sd(t, "resource", "Thing", element{Path: "Thing.item", ContentReference: "#Thing.nope"}),
	}
	for name, def := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := build([]structureDefinition{def}); err == nil {
				t.Error("build succeeded")
			}
		})
	}
}
