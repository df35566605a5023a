package chartview

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBuildVitals(t *testing.T) {
	var obs []Obj
	raw := `[
	 {"effectiveDateTime":"2024-01-01T10:00:00Z","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":70,"unit":"/min"}},
	 {"effectiveDateTime":"2025-01-01T10:00:00Z","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":90,"unit":"/min"}},
	 {"effectiveDateTime":"2024-06-01T10:00:00Z","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"component":[
	   {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120}},
	   {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80}}]},
	 {"effectiveDateTime":"not a date","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":1}},
	 {"effectiveDateTime":"2024-06-01T10:00:00Z","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"valueQuantity":{"value":"heavy"}}
	]`
	if err := json.Unmarshal([]byte(raw), &obs); err != nil {
		t.Fatal(err)
	}
	c := buildVitals(obs)
	if c == nil || len(c.Wide.Panels) != 2 || len(c.Narrow.Panels) != 2 {
		t.Fatalf("panels: %+v", c)
	}
	hr := c.Wide.Panels[0]
	if hr.Title != "Heart rate (/min)" || len(hr.Series) != 1 || len(hr.Series[0].Dots) != 2 {
		t.Fatalf("heart rate panel: %+v", hr)
	}
	// Oldest on the left edge, newest on the right; the higher value higher up.
	d := hr.Series[0].Dots
	if d[0].X != "56.0" || d[1].X != "624.0" {
		t.Errorf("x positions %s, %s", d[0].X, d[1].X)
	}
	if !(atof(d[1].Y) < atof(d[0].Y)) {
		t.Errorf("90 is drawn below 70")
	}
	// The narrow drawing (phones) spans its own, narrower plot.
	nd := c.Narrow.Panels[0].Series[0].Dots
	if nd[0].X != "46.0" || nd[1].X != "350.0" || c.Narrow.Width != 360 {
		t.Errorf("narrow x positions %s, %s (width %d)", nd[0].X, nd[1].X, c.Narrow.Width)
	}
	if c.Narrow.Height <= c.Wide.Height {
		t.Errorf("narrow drawing %d high, wide %d: the phone's panels should be taller", c.Narrow.Height, c.Wide.Height)
	}
	if len(c.Wide.Panels[1].Series) != 2 || c.Start != "2024-01-01" || c.End != "2025-01-01" {
		t.Errorf("blood pressure panel or range: %+v", c)
	}
	if len(c.Rows) != 3 || c.Rows[0].Value != "90/min" {
		t.Errorf("table rows: %+v", c.Rows)
	}
	if buildVitals(nil) != nil {
		t.Errorf("a chart without data")
	}
}

func atof(s string) float64 {
	var f float64
	fmt.Sscan(s, &f)
	return f
}

func TestFHIRView(t *testing.T) {
	var p Obj
	_ = json.Unmarshal([]byte(`{"name":[{"use":"usual","given":["Bo"]},{"use":"official","family":"Ng","given":["Ann","B."]}],
	  "identifier":[{"value":"ssn"},{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"value":"MRN-7"}]}`), &p)
	if got := HumanName(p); got != "Ng, Ann B." {
		t.Errorf("name %q", got)
	}
	if got := MRN(p); got != "MRN-7" {
		t.Errorf("mrn %q", got)
	}
	var d Obj
	_ = json.Unmarshal([]byte(`{"content":[{"attachment":{"contentType":"text/plain; charset=utf-8","data":"PGI+aGk8L2I+"}}]}`), &d)
	if got := attachmentText(d); got != "<b>hi</b>" {
		t.Errorf("note %q", got)
	}
	if got := age("2000-06-15", time.Date(2026, 6, 14, 0, 0, 0, 0, time.UTC)); got != "25" {
		t.Errorf("age %q", got)
	}
	if got := age("2000-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)); got != "26" {
		t.Errorf("age on the birthday after a leap year: %q", got)
	}
}

func TestExplainResult(t *testing.T) {
	q := func(v float64, u string) map[string]any { return map[string]any{"value": v, "unit": u, "code": u} }
	for _, tc := range []struct {
		name      string
		obs       Obj
		want      string
		wantAlert bool
	}{
		{name: "nothing sent", obs: Obj{"valueQuantity": q(5, "mmol/L")}, want: ""},
		{name: "flag and range", obs: Obj{"valueQuantity": q(130, "mg/dL"),
			"referenceRange": []any{map[string]any{"low": q(70, "mg/dL"), "high": q(99, "mg/dL")}},
			"interpretation": []any{map[string]any{"coding": []any{map[string]any{"code": "H"}}}}},
			want: "This result is high: above the usual range. Usual range 70 to 99 mg/dL. Ask your care team", wantAlert: true},
		{name: "range only, above", obs: Obj{"valueQuantity": q(130, "mg/dL"), "referenceRange": []any{map[string]any{"high": q(99, "mg/dL")}}},
			want: "This result is high: above the usual range. Usual range up to 99 mg/dL.", wantAlert: true},
		{name: "range only, within", obs: Obj{"valueQuantity": q(80, "mg/dL"), "referenceRange": []any{map[string]any{"low": q(70, "mg/dL"), "high": q(99, "mg/dL")}}},
			want: "This result is normal: within the usual range. Usual range 70 to 99 mg/dL."},
		{name: "other unit: no flag", obs: Obj{"valueQuantity": q(7, "mmol/L"), "referenceRange": []any{map[string]any{"low": q(70, "mg/dL"), "high": q(99, "mg/dL")}}},
			want: "Usual range 70 to 99 mg/dL."},
		{name: "low flag", obs: Obj{"interpretation": []any{map[string]any{"coding": []any{map[string]any{"code": "l"}}}}},
			want: "This result is low: below the usual range.", wantAlert: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Numbers arrive as json.Number or float64; these are float64.
			e := ExplainResult(tc.obs)
			if got := e.String(); !strings.HasPrefix(got, tc.want) || (tc.want == "" && got != "") {
				t.Errorf("explanation %q, want %q", got, tc.want)
			}
			if e.Alert != tc.wantAlert {
				t.Errorf("alert %t, want %t", e.Alert, tc.wantAlert)
			}
		})
	}
}

// TestLabFlagsAndUnits: a flag comes from the interpretation when there
// is one ("N" clears a computed one), else from the reference range;
// trends compare with the previous result of the same test; units are
// written as people write them.
func TestLabFlagsAndUnits(t *testing.T) {
	obs := func(id, code string, v float64, lo, hi float64, interp string) Obj {
		o := Obj{"id": id, "effectiveDateTime": "2026-01-0" + id + "T00:00:00Z",
			"code":           map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": code}}, "text": code},
			"valueQuantity":  map[string]any{"value": v, "code": "10*3/uL"},
			"referenceRange": []any{map[string]any{"low": map[string]any{"value": lo, "code": "10*3/uL"}, "high": map[string]any{"value": hi, "code": "10*3/uL"}}}}
		if interp != "" {
			o["interpretation"] = []any{map[string]any{"coding": []any{map[string]any{"system": interpretationSystem, "code": interp}}}}
		}
		return o
	}
	rows := LabRows([]Obj{
		obs("5", "wbc", 12, 4, 11, ""), // computed high, up
		obs("4", "wbc", 3, 4, 11, "N"), // below range, but the lab says normal
		obs("3", "plt", 900, 150, 400, "HH"),
		obs("2", "plt", 900, 150, 400, ""),
	})
	want := []struct{ flag, trend, value, rng string }{
		{"H", "↑", "12 ×10³/µL", "4–11 ×10³/µL"},
		{"", "", "3 ×10³/µL", "4–11 ×10³/µL"},
		{"HH", "→", "900 ×10³/µL", "150–400 ×10³/µL"},
		{"H", "", "900 ×10³/µL", "150–400 ×10³/µL"},
	}
	for i, w := range want {
		r := rows[i]
		if r.Flag != w.flag || r.Trend != w.trend || r.Value != w.value || r.Range != w.rng {
			t.Errorf("row %d: flag %q trend %q value %q range %q, want %+v", i, r.Flag, r.Trend, r.Value, r.Range, w)
		}
	}
	for code, want := range map[string]string{"mm[Hg]": "mmHg", "Cel": "°C", "umol/L": "µmol/L", "weird": "weird"} {
		if got := UnitDisplay(code, ""); got != want {
			t.Errorf("UnitDisplay(%q) = %q, want %q", code, got, want)
		}
	}
	if got := WithUnit("98", "%"); got != "98%" {
		t.Errorf("WithUnit percent: %q", got)
	}
	if got := frequency(Obj{"repeat": map[string]any{"frequency": 1.0, "period": 8.0, "periodUnit": "h"}}); got != "once every 8 hours" {
		t.Errorf("frequency: %q", got)
	}
}
