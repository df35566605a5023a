package search

import (
	"fmt"
)

// parseExtended parses the predicates of number, quantity, uri and
// composite parameters and the token modifiers :text, :of-type, :in,
// :not-in, :above and :below (the other forms are parsePred's). done is
// false when parsePred should go on.
func parseExtended(p *Param, name, modifier, raw string, pred *Pred) (done bool, err error) {
	switch p.Type {
	case Token:
		switch {
		case modifier == "above" || modifier == "below":
			return true, fmt.Errorf("parsing search parameter %s: subsumption (:above, :below) needs a terminology hierarchy and is not supported (use :in with a stored ValueSet): %w", name, ErrUnsupported)
		case valueSetModifier(modifier):
			if raw == "" || len(splitEscaped(raw, ',')) > 1 {
				return true, fmt.Errorf("parsing search parameter %s: want one ValueSet canonical url: %w", name, ErrInvalidValue)
			}
			pred.ValueSet = unescape(raw)
			pred.Negate = modifier == "not-in"
			return true, nil
		case modifier == "text" || modifier == "of-type":
			alts, err := alternatives(name, raw)
			if err != nil {
				return true, err
			}
			for _, a := range alts {
				t, _, err := tokenModifierTerms(p, name, modifier, a)
				if err != nil {
					return true, err
				}
				pred.Terms = append(pred.Terms, t)
			}
			return true, nil
		}
		return false, nil
	case Number, Quantity, URI, Composite:
	default:
		return false, nil
	}
	switch {
	case modifier == "":
	case p.Type == URI && (modifier == "below" || modifier == "above"):
	default:
		return true, fmt.Errorf("parsing search parameter %s: modifier is not supported for a %s parameter: %w", name, p.Type, ErrUnsupported)
	}
	alts, err := alternatives(name, raw)
	if err != nil {
		return true, err
	}
	for _, a := range alts {
		var ts []Term
		switch p.Type {
		case URI:
			ts, err = uriQueryTerms(p, name, modifier, unescape(a))
		case Composite:
			var ps []Pair
			ts, ps, err = compositeQuery(p, name, a)
			pred.Pairs = mergePairs(append(pred.Pairs, ps...))
		case Number, Quantity:
			var keys []string
			var neg bool
			if p.Type == Number {
				keys, neg, err = numberKeys(name, unescape(a))
			} else {
				keys, neg, err = quantityKeys(name, a)
			}
			if err == nil && neg && len(alts) > 1 {
				err = fmt.Errorf("parsing search parameter %s: ne cannot be combined with other values (repeat the parameter instead): %w", name, ErrUnsupported)
			}
			pred.Negate = neg
			ts = keyTerms(p.Code, keys, nil)
		}
		if err != nil {
			return true, err
		}
		pred.Terms = append(pred.Terms, ts...)
	}
	return true, nil
}

// Documentation says which modifiers and prefixes the parameter
// supports, for the CapabilityStatement.
func (p *Param) Documentation() string {
	switch p.Type {
	case Token:
		s := "Modifiers: :not, :missing, :of-type (identifiers), :in and :not-in (a stored ValueSet); system| matches any code of a system"
		if p.textIndexed {
			s += "; :text (prefix of the normalised display or text)"
		}
		return s + ". Not supported: :above, :below."
	case String:
		return "Prefix match on the normalised value; modifiers :exact, :missing. Not supported: :contains."
	case Reference:
		return "Modifiers: :[type], :missing."
	case Date:
		return "Prefixes eq ne gt lt ge le sa eb ap; modifier :missing."
	case Number:
		return "Prefixes eq ne gt lt ge le sa eb ap (implicit precision on eq, ne, ap); compared at 6 significant digits; modifier :missing."
	case Quantity:
		return "[prefix]number[|system|code] or [prefix]number||code; prefixes as number; UCUM converted by powers of ten only (metric prefixes of g, L, m, mol, eq, s, U, Pa, Hz); modifier :missing."
	case URI:
		return "Exact match; modifiers :below, :above (at / path boundaries), :missing. Not supported: :contains."
	case Composite:
		return "code$value, paired within one repetition; the value takes its type's prefixes except ne; modifier :missing."
	}
	return ""
}
