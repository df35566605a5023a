package export

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "+1": "'+1", "-2+3": "'-2+3", "@SUM(A1)": "'@SUM(A1)",
		"\t=1": "'\t=1", "\r=1": "'\r=1", "plain": "plain", "": "", "a=b": "a=b", "'quoted": "'quoted",
	} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteCSV(t *testing.T) {
	tab := Table{Columns: []string{"When", "Who"}, Rows: [][]string{{"2026-01-02", "=cmd|' /C calc'!A0"}, {"2026-01-03", "Dana \"D\", MD\nline two"}}}
	var b bytes.Buffer
	if err := WriteCSV(&b, tab); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	want := [][]string{{"When", "Who"}, {"2026-01-02", "'=cmd|' /C calc'!A0"}, {"2026-01-03", "Dana \"D\", MD\nline two"}}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("rows %q, want %q", rows, want)
	}
}

func TestWritePDF(t *testing.T) {
	var rows [][]string
	for i := range 120 { // several pages
		rows = append(rows, []string{"row " + strings.Repeat("x", i%7), "Zoë (ward 3) \\ naïve", "a long cell that has to wrap over more than one line in a narrow column of the table"})
	}
	d := Document{Title: "Accounting of disclosures", Subtitle: []string{"For: Zoë Example"}, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Sections: []Section{{Heading: "Entries", Text: []string{"Emoji 😀 become a question mark."}, Table: &Table{Columns: []string{"A", "B", "C"}, Widths: []float64{1, 1, 2}, Rows: rows}}}}
	var b bytes.Buffer
	if err := WritePDF(&b, d); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", b.Bytes()[:min(20, b.Len())])
	}
	text := strings.Join(Text(b.Bytes()), "\n")
	for _, want := range []string{"Accounting of disclosures", "For: Zoë Example", "Zoë (ward 3) \\ naïve", "Emoji ? become a question mark.", "page 1 of", "row xxxxxx"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF text lacks %q", want)
		}
	}
	if n := strings.Count(text, "Zoë (ward 3)"); n != 120 {
		t.Errorf("%d rows in the PDF, want 120", n)
	}
	if n := bytes.Count(b.Bytes(), []byte("/Type /Page\n")); n < 3 {
		t.Errorf("%d pages, want the table over several", n)
	}
}
