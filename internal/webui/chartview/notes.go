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

// Attachment is a PDF or image of a document, shown from the chart's
// same-origin content URL (chart/documents.go).
type Attachment struct {
	N           int    // its index in content
	Title       string // the attachment's title, else the note's
	PDF, Image  bool
	ContentType string
}

// shownTypes are the attachment types the chart shows inline.
var shownTypes = map[string]string{"application/pdf": "pdf", "image/png": "image", "image/jpeg": "image", "image/gif": "image", "image/webp": "image"}

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
	for i, c := range r.List("content") {
		a := c.Obj("attachment")
		typ, _, _ := strings.Cut(a.Str("contentType"), ";")
		kind := shownTypes[strings.TrimSpace(strings.ToLower(typ))]
		if kind == "" || a.Str("data") == "" {
			continue
		}
		t := a.Str("title")
		if t == "" {
			t = title
		}
		n.Attachments = append(n.Attachments, Attachment{N: i, Title: t, PDF: kind == "pdf", Image: kind == "image", ContentType: typ})
	}
	for _, rel := range r.List("relatesTo") {
		if rel.Str("code") == "appends" {
			if id, ok := strings.CutPrefix(rel.Obj("target").Str("reference"), "DocumentReference/"); ok {
				n.AppendsTo = id
			}
		}
	}
	return n
}
