package record

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/phivault/phivault/internal/fhir"
)

// Signed documents (ADR 0035). A DocumentReference whose docStatus is
// "final" or "amended" is a signed note: it is part of the legal record
// and is never edited. It is amended by an addendum, a new
// DocumentReference whose relatesTo "appends" targets it, and the
// history shows both. The record enforces it for every writer and every
// path that writes a version (PUT, conditional PUT, PATCH, Bundle
// entries): an update may change only the signed document's status
// (current, superseded, entered-in-error) and its meta (security labels,
// tags); anything else is refused with 422. A signed document is not
// deleted either: marking it entered-in-error keeps what was signed and
// says it is void.

// signedDocStatus are the docStatus codes of a signed document.
var signedDocStatus = map[string]bool{"final": true, "amended": true}

// signedEditable are the elements an update of a signed document may
// change.
var signedEditable = []string{"meta", "status"}

// signedDocument reports whether the stored body is a signed document.
func signedDocument(typ string, body []byte) (bool, error) {
	if typ != "DocumentReference" || body == nil {
		return false, nil
	}
	var d struct {
		DocStatus string `json:"docStatus"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return false, fmt.Errorf("reading the stored DocumentReference: %w", err)
	}
	return signedDocStatus[d.DocStatus], nil
}

// keepSigned refuses an update of a signed document (old, the current
// body) that changes anything but its status and meta.
func keepSigned(res fhir.Resource, old []byte) error {
	signed, err := signedDocument(res.Type(), old)
	if err != nil || !signed {
		return err
	}
	var before map[string]any
	if err := json.Unmarshal(old, &before); err != nil {
		return fmt.Errorf("reading the stored DocumentReference: %w", err)
	}
	b, err := json.Marshal(map[string]any(res))
	if err != nil {
		return invalid("the resource could not be encoded")
	}
	var after map[string]any
	if err := json.Unmarshal(b, &after); err != nil {
		return invalid("the resource could not be encoded")
	}
	for _, k := range signedEditable {
		delete(before, k)
		delete(after, k)
	}
	if !reflect.DeepEqual(before, after) {
		return fail(ErrUnprocessable, "business-rule",
			"this DocumentReference is signed (docStatus final or amended) and cannot be edited; amend it with a new DocumentReference whose relatesTo appends it (an addendum), or set its status to entered-in-error")
	}
	return nil
}

// refuseSignedDelete refuses deleting a signed document (body, its
// current version).
func refuseSignedDelete(typ string, body []byte) error {
	signed, err := signedDocument(typ, body)
	if err != nil || !signed {
		return err
	}
	return fail(ErrUnprocessable, "business-rule",
		"this DocumentReference is signed (docStatus final or amended) and is not deleted; set its status to entered-in-error instead")
}
