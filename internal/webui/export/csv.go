package export

import (
	"encoding/csv"
	"io"
	"strings"
)

// Table is rows under named columns. Widths are the columns' relative
// widths in a PDF (nil: equal).
type Table struct {
	Columns []string
	Widths  []float64
	Rows    [][]string
}

// formulaStart are the first characters with which a spreadsheet reads
// a cell as a formula (=, +, -, @) or hides one behind a control
// character (tab, carriage return): OWASP's CSV injection list.
const formulaStart = "=+-@\t\r"

// SafeCell returns s as a CSV cell that no spreadsheet runs: prefixed
// with a single quote when it begins with one of formulaStart.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune(formulaStart, rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteCSV writes t as CSV (RFC 4180, CRLF line ends, a header row),
// each cell through [SafeCell].
func WriteCSV(w io.Writer, t Table) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	row := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		row[i] = SafeCell(c)
	}
	if err := cw.Write(row); err != nil {
		return err
	}
	for _, r := range t.Rows {
		row = row[:0]
		for _, c := range r {
			row = append(row, SafeCell(c))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
