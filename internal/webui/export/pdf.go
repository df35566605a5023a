package export

import (
	"fmt"
	"io"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
)

// Document is a PDF: a title, a few lines under it (who, when, which
// filters), then sections.
type Document struct {
	Title    string
	Subtitle []string
	Sections []Section
	// Created is the document's date (its metadata and footer);
	// injected by the caller's clock.
	Created time.Time
	// Landscape lays wide tables out across the page.
	Landscape bool
}

// Section is a heading, paragraphs, and an optional table.
type Section struct {
	Heading string
	Text    []string
	Table   *Table
}

// Page geometry, in millimetres.
const (
	margin     = 12.0
	lineHeight = 4.6
	cellPad    = 1.2
	bodySize   = 9.0
)

// WritePDF writes d as a PDF (A4, core font Helvetica, uncompressed:
// see the package doc). An error is fpdf's and means nothing usable was
// written.
func WritePDF(w io.Writer, d Document) error {
	orient := "P"
	if d.Landscape {
		orient = "L"
	}
	pdf := fpdf.New(orient, "mm", "A4", "")
	pdf.SetCompression(false)
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(false, margin)
	if !d.Created.IsZero() {
		pdf.SetCreationDate(d.Created)
		pdf.SetModificationDate(d.Created)
	}
	pdf.SetCatalogSort(true)
	pdf.SetTitle(d.Title, true)
	pdf.SetCreator("phivault", false)
	pdf.AliasNbPages("{nb}")
	tr := cp1252(pdf.UnicodeTranslatorFromDescriptor(""))
	footer := d.Title
	if !d.Created.IsZero() {
		footer += " - " + d.Created.Format("2006-01-02 15:04 MST")
	}
	pdf.SetFooterFunc(func() {
		pdf.SetY(-margin + 2)
		pdf.SetFont("Helvetica", "", 7.5)
		pdf.CellFormat(0, 4, tr(footer), "", 0, "L", false, 0, "")
		pdf.CellFormat(0, 4, fmt.Sprintf("page %d of {nb}", pdf.PageNo()), "", 0, "R", false, 0, "")
	})
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 15)
	pdf.MultiCell(0, 7, tr(d.Title), "", "L", false)
	pdf.SetFont("Helvetica", "", bodySize)
	for _, s := range d.Subtitle {
		pdf.MultiCell(0, lineHeight, tr(s), "", "L", false)
	}
	for _, s := range d.Sections {
		pdf.Ln(3)
		if s.Heading != "" {
			ensure(pdf, 2*lineHeight+7)
			pdf.SetFont("Helvetica", "B", 11.5)
			pdf.MultiCell(0, 6, tr(s.Heading), "", "L", false)
			pdf.SetFont("Helvetica", "", bodySize)
		}
		for _, p := range s.Text {
			lines := pdf.SplitText(p, pageWidth(pdf))
			ensure(pdf, float64(len(lines))*lineHeight)
			pdf.MultiCell(0, lineHeight, tr(p), "", "L", false)
		}
		if s.Table != nil {
			table(pdf, tr, *s.Table)
		}
	}
	return pdf.Output(w)
}

// cp1252 wraps fpdf's translator: the core fonts hold Windows-1252, and
// fpdf writes '.' for what they lack; a '?' says more plainly that a
// character was lost. Control characters other than newline are
// dropped.
func cp1252(tr func(string) string) func(string) string {
	return func(s string) string {
		s = strings.Map(func(r rune) rune {
			switch {
			case r == '\n':
				return r
			case r < ' ' || r == 0x7f:
				return -1
			case r == '.' || r < 0x80:
				return r
			}
			if tr(string(r)) == "." {
				return '?'
			}
			return r
		}, s)
		return tr(s)
	}
}

func pageWidth(pdf *fpdf.Fpdf) float64 {
	w, _ := pdf.GetPageSize()
	return w - 2*margin
}

// ensure starts a new page unless h millimetres fit on this one.
func ensure(pdf *fpdf.Fpdf, h float64) bool {
	_, ph := pdf.GetPageSize()
	if pdf.GetY()+h > ph-margin-4 {
		pdf.AddPage()
		return true
	}
	return false
}

// table draws t with a header row repeated on each page; cells wrap.
func table(pdf *fpdf.Fpdf, tr func(string) string, t Table) {
	if len(t.Columns) == 0 {
		return
	}
	total := 0.0
	weights := make([]float64, len(t.Columns))
	for i := range weights {
		weights[i] = 1
		if i < len(t.Widths) && t.Widths[i] > 0 {
			weights[i] = t.Widths[i]
		}
		total += weights[i]
	}
	widths := make([]float64, len(weights))
	for i, x := range weights {
		widths[i] = pageWidth(pdf) * x / total
	}
	header := func() {
		pdf.SetFont("Helvetica", "B", bodySize)
		pdf.SetFillColor(230, 234, 238)
		row(pdf, tr, widths, t.Columns, true)
		pdf.SetFont("Helvetica", "", bodySize)
	}
	ensure(pdf, 3*lineHeight)
	header()
	if len(t.Rows) == 0 {
		pdf.MultiCell(0, lineHeight, tr("(none)"), "", "L", false)
		return
	}
	for _, r := range t.Rows {
		if ensure(pdf, rowHeight(pdf, widths, r)) {
			header()
		}
		row(pdf, tr, widths, r, false)
	}
}

func cellLines(pdf *fpdf.Fpdf, w float64, s string) []string {
	lines := pdf.SplitText(s, w-2*cellPad+2*pdf.GetCellMargin())
	if len(lines) == 0 {
		lines = []string{""}
	}
	return lines
}

func rowHeight(pdf *fpdf.Fpdf, widths []float64, cells []string) float64 {
	n := 1
	for i, w := range widths {
		if i < len(cells) {
			n = max(n, len(cellLines(pdf, w, cells[i])))
		}
	}
	return float64(n)*lineHeight + cellPad
}

func row(pdf *fpdf.Fpdf, tr func(string) string, widths []float64, cells []string, fill bool) {
	h := rowHeight(pdf, widths, cells)
	x0, y := margin, pdf.GetY()
	x := x0
	for i, w := range widths {
		style := "D"
		if fill {
			style = "FD"
		}
		pdf.SetDrawColor(190, 196, 204)
		pdf.Rect(x, y, w, h, style)
		if i < len(cells) {
			for j, line := range cellLines(pdf, w, cells[i]) {
				pdf.SetXY(x+cellPad/2, y+cellPad/2+float64(j)*lineHeight)
				pdf.CellFormat(w-cellPad, lineHeight, tr(line), "", 0, "L", false, 0, "")
			}
		}
		x += w
	}
	pdf.SetXY(x0, y+h)
}
