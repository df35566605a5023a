package chartview

import (
	"slices"
	"strconv"
	"strings"
)

// Notes (ADR 0035). A note is a DocumentReference: a draft while its
// docStatus is "preliminary", signed once it is "final" (or "amended"),
// with the signer in authenticator. A signed note is never edited (the
// record service refuses it); it is amended by an addendum, a new
// DocumentReference whose relatesTo "appends" it. The chart shows each
// note with its addenda beneath it, oldest first.

// NoteRows shapes DocumentReferences (newest first) into notes with
// their addenda.
func NoteRows(docs []Obj) []NoteRow {
	rows := make([]NoteRow, 0, len(docs))
	var addenda []NoteRow
	for _, r := range docs {
		n := noteRow(r)
		if n.AppendsTo != "" {
			addenda = append(addenda, n)
			continue
		}
		rows = append(rows, n)
	}
	// Oldest first under each note: the list is newest first.
	for i := len(addenda) - 1; i >= 0; i-- {
		a := addenda[i]
		j := slices.IndexFunc(rows, func(n NoteRow) bool { return n.ID == a.AppendsTo })
		if j < 0 {
			rows = append(rows, a) // its note is beyond this page
			continue
		}
		a.AppendsTo = ""
		rows[j].Addenda = append(rows[j].Addenda, a)
	}
	return rows
}

func noteRow(r Obj) NoteRow {
	title := r.Str("description")
	if title == "" {
		title = concept(r.Obj("type"))
	}
	n := NoteRow{When: shortDate(r.Str("date")), Title: title, Text: attachmentText(r), ID: r.Str("id")}
	if as := r.List("author"); len(as) > 0 {
		n.Author = as[0].Str("display")
		n.AuthorRef = as[0].Str("reference")
	}
	if v, err := strconv.ParseInt(r.Obj("meta").Str("versionId"), 10, 64); err == nil {
		n.Version = v
	}
	switch r.Str("docStatus") {
	case "preliminary":
		n.Draft = true
	case "final", "amended":
		n.Signed = true
		n.SignedBy = r.Obj("authenticator").Str("display")
	}
	n.Void = r.Str("status") == "entered-in-error"
	for _, rel := range r.List("relatesTo") {
		if rel.Str("code") == "appends" {
			if id, ok := strings.CutPrefix(rel.Obj("target").Str("reference"), "DocumentReference/"); ok {
				n.AppendsTo = id
			}
		}
	}
	return n
}
