package terminology

import (
	"context"
	"errors"
)

// Validation is the answer of $validate-code: result, a message when
// the code is not valid (or its display is wrong), and the display the
// code system gives.
type Validation struct {
	Result  bool
	Message string
	Display string
}

// Coding is a code to check: system (may be "" for a bare code),
// version, code and an optional display.
type Coding struct {
	System, Version, Code, Display string
}

// ValidateInValueSet reports whether c is in vs (expanded through src,
// bounded by MaxExpansion) and, when c has a display, whether it is a
// display of the code. A bare code (no system) matches a code of any
// system in the value set. Messages never quote the code or display.
func ValidateInValueSet(ctx context.Context, src Source, vs *ValueSet, c Coding) (Validation, error) {
	if c.Code == "" {
		return Validation{}, fail(ErrInvalid, "a code is required (code, coding or codeableConcept)")
	}
	set, err := expandAll(ctx, src, vs, 0, map[string]bool{})
	if err != nil {
		return Validation{}, err
	}
	var found *Code
	for i := range set.list {
		e := &set.list[i]
		if e.Code == c.Code && (c.System == "" || e.System == c.System) {
			found = e
			break
		}
	}
	if found == nil {
		return Validation{Message: "the code is not in the value set"}, nil
	}
	// The code system's displays and designations, when it is available.
	cs, err := src.CodeSystem(ctx, found.System, found.Version)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Validation{}, err
	}
	if cs != nil {
		if def := cs.Concept(found.Code); def != nil {
			return checkDisplay(def, c.Display), nil
		}
	}
	v := Validation{Result: true, Display: found.Display}
	if c.Display != "" && found.Display != "" && c.Display != found.Display {
		v = Validation{Message: "the display is not the display of the code", Display: found.Display}
	}
	return v, nil
}

// ValidateInCodeSystem reports whether c.Code is defined by cs (and its
// display, if given, is one of the concept's).
func ValidateInCodeSystem(cs *CodeSystem, c Coding) (Validation, error) {
	if c.Code == "" {
		return Validation{}, fail(ErrInvalid, "a code is required (code, coding or codeableConcept)")
	}
	if c.System != "" && c.System != cs.URL {
		return Validation{Message: "the coding's system is not this code system"}, nil
	}
	def := cs.Concept(c.Code)
	if def == nil {
		return Validation{Message: "the code is not defined by the code system"}, nil
	}
	return checkDisplay(def, c.Display), nil
}

func checkDisplay(def *Concept, display string) Validation {
	if display != "" && !def.HasDisplay(display) {
		return Validation{Message: "the display is not a display of the code", Display: def.Display}
	}
	return Validation{Result: true, Display: def.Display}
}
