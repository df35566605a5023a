package terminology

import (
	"slices"
)

// Lookup is the answer of CodeSystem/$lookup as an R4 Parameters
// resource: name, version, display, designation (language, use, value)
// and property (code, value[x]) parts. props restricts the properties
// returned (R4 "property" input); empty means all defined properties
// plus parent and child. "definition" is returned only when asked for.
// A code the code system does not define is ErrNotFound.
func Lookup(cs *CodeSystem, code string, props []string) (map[string]any, error) {
	if code == "" {
		return nil, fail(ErrInvalid, "a code is required (code or coding)")
	}
	def := cs.Concept(code)
	if def == nil {
		return nil, fail(ErrNotFound, "the code is not defined by the code system")
	}
	want := func(p string) bool { return len(props) == 0 || slices.Contains(props, p) }
	var params []any
	params = append(params, param("name", "valueString", cs.Label()))
	if cs.Version != "" {
		params = append(params, param("version", "valueString", cs.Version))
	}
	if def.Display != "" {
		params = append(params, param("display", "valueString", def.Display))
	}
	if want("designation") {
		for _, d := range def.Designations {
			var parts []any
			if d.Language != "" {
				parts = append(parts, param("language", "valueCode", d.Language))
			}
			if d.Use != nil {
				parts = append(parts, param("use", "valueCoding", d.Use))
			}
			parts = append(parts, param("value", "valueString", d.Value))
			params = append(params, map[string]any{"name": "designation", "part": parts})
		}
	}
	prop := func(code, key string, v any) {
		params = append(params, map[string]any{"name": "property", "part": []any{
			param("code", "valueCode", code), param("value", key, v)}})
	}
	if slices.Contains(props, "definition") && def.Definition != "" {
		prop("definition", "valueString", def.Definition)
	}
	for _, p := range def.Properties {
		if p.Code == "parent" || p.Code == "child" {
			continue // reported from the hierarchy below, once
		}
		if want(p.Code) {
			prop(p.Code, p.ValueKey, p.Value)
		}
	}
	if want("parent") {
		for _, p := range cs.Parents(def.Code) {
			prop("parent", "valueCode", p)
		}
	}
	if want("child") {
		for _, c := range cs.Children(def.Code) {
			prop("child", "valueCode", c)
		}
	}
	return map[string]any{"resourceType": "Parameters", "parameter": params}, nil
}

func param(name, key string, v any) map[string]any {
	return map[string]any{"name": name, key: v}
}
