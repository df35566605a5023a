package fhirctx

import (
	"bytes"
	"encoding/json"
)

// jsonName is Organization.name (a string) or a person's name (a list
// of HumanName).
type jsonName struct {
	Text   string
	Humans []humanName
}

func (n *jsonName) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &n.Text)
	case len(b) > 0 && b[0] == '[':
		return json.Unmarshal(b, &n.Humans)
	}
	return nil // null or another shape: no name
}

// subjects is a reference or a list of them.
type subjects []reference

func (s *subjects) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '{':
		var r reference
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		*s = subjects{r}
	case len(b) > 0 && b[0] == '[':
		var rs []reference
		if err := json.Unmarshal(b, &rs); err != nil {
			return err
		}
		*s = rs
	}
	return nil
}

// concepts is a CodeableConcept or a list of them.
type concepts []concept

func (c *concepts) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '{':
		var one concept
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*c = concepts{one}
	case len(b) > 0 && b[0] == '[':
		var many []concept
		if err := json.Unmarshal(b, &many); err != nil {
			return err
		}
		*c = many
	}
	return nil
}
