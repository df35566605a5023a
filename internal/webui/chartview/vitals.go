package chartview

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The vital-signs chart: small multiples (heart rate, blood pressure,
// weight) over one shared time axis, drawn by the server as SVG. Every
// attribute value is a number or a date this file formats, and the
// template escapes them anyway; styling comes from classes in the
// stylesheet (the CSP allows no inline style). The same values are
// listed in a table for screen readers and for copying.

// geometry is the layout of one drawing of the chart, in SVG user units
// (the drawing scales with the page).
type geometry struct {
	width, panelHeight  int
	plotLeft, plotRight int
	plotTop, plotBottom int // within a panel: plotTop leaves room for its title
	axisHeight          int // the date labels under the last panel
}

// The chart is drawn twice and the stylesheet shows one: wide for
// screens from 40rem, and narrow for phones. Scaled down to a 390 px
// phone, the wide drawing's 11-unit labels would be about 6 px tall;
// the narrow one is about as wide in user units as the phone is in CSS
// pixels, so its labels (sized in the stylesheet) stay legible, and its
// panels are taller for the same reason.
var (
	wideGeometry   = geometry{width: 640, panelHeight: 120, plotLeft: 56, plotRight: 624, plotTop: 26, plotBottom: 100, axisHeight: 22}
	narrowGeometry = geometry{width: 360, panelHeight: 150, plotLeft: 46, plotRight: 350, plotTop: 32, plotBottom: 128, axisHeight: 28}
)

type vitalsChart struct {
	Start, End string // dates of the first and last measurement
	// Wide and Narrow are the two drawings of the same data.
	Wide, Narrow vitalsDrawing
	Rows         []vitalsRow // the same data as a table
}

// vitalsDrawing is one SVG of the chart.
type vitalsDrawing struct {
	Width, Height       int
	PlotLeft, PlotRight int
	TickX               int // right edge of the y-axis labels
	Panels              []vitalsPanel
	AxisY               int
}

type vitalsPanel struct {
	Title, Unit  string
	Y            int // top of the panel
	TitleY       int
	PlotTop      int
	PlotBottom   int
	YMax, YMin   string // axis labels
	YMaxY, YMinY int
	Series       []vitalsSeries
}

type vitalsSeries struct {
	Name, Class string
	Points      string // "x,y x,y …" for a polyline
	Dots        []vitalsDot
}

type vitalsDot struct {
	X, Y  string
	Label string // "2025-03-01: 72 /min", a tooltip (<title>)
}

type vitalsRow struct {
	When, What, Value string
}

type point struct {
	t time.Time
	v float64
}

// buildVitals turns vital-sign Observations into the chart, or nil when
// there is nothing to draw.
func buildVitals(obs []Obj) *vitalsChart {
	var hr, sys, dia, wt []point
	var rows []vitalsRow
	for _, o := range obs {
		t := when(o.Str("effectiveDateTime"))
		if t.IsZero() {
			continue
		}
		code := o.Obj("code")
		switch {
		case hasCode(code, LOINC, LOINCHeartRate):
			if v, ok := Number(o.Obj("valueQuantity")["value"]); ok {
				hr = append(hr, point{t, v})
				rows = append(rows, vitalsRow{When: t.UTC().Format(time.DateOnly), What: "Heart rate", Value: quantity(o.Obj("valueQuantity"))})
			}
		case hasCode(code, LOINC, LOINCWeight):
			if v, ok := Number(o.Obj("valueQuantity")["value"]); ok {
				wt = append(wt, point{t, v})
				rows = append(rows, vitalsRow{When: t.UTC().Format(time.DateOnly), What: "Weight", Value: quantity(o.Obj("valueQuantity"))})
			}
		case hasCode(code, LOINC, LOINCBPPanel):
			var s, d float64
			var okS, okD bool
			for _, c := range o.List("component") {
				switch {
				case hasCode(c.Obj("code"), LOINC, LOINCSystolic):
					s, okS = Number(c.Obj("valueQuantity")["value"])
				case hasCode(c.Obj("code"), LOINC, LOINCDiastolic):
					d, okD = Number(c.Obj("valueQuantity")["value"])
				}
			}
			if okS && okD {
				sys = append(sys, point{t, s})
				dia = append(dia, point{t, d})
				rows = append(rows, vitalsRow{When: t.UTC().Format(time.DateOnly), What: "Blood pressure",
					Value: FmtNum(s) + "/" + FmtNum(d) + " mmHg"})
			}
		}
	}
	all := append(append(append(append([]point(nil), hr...), sys...), dia...), wt...)
	if len(all) == 0 {
		return nil
	}
	t0, t1 := all[0].t, all[0].t
	for _, p := range all {
		if p.t.Before(t0) {
			t0 = p.t
		}
		if p.t.After(t1) {
			t1 = p.t
		}
	}
	c := &vitalsChart{Start: t0.UTC().Format(time.DateOnly), End: t1.UTC().Format(time.DateOnly)}
	draw := func(g geometry) vitalsDrawing {
		d := vitalsDrawing{Width: g.width, PlotLeft: g.plotLeft, PlotRight: g.plotRight, TickX: g.plotLeft - 6}
		add := func(title, unit string, series ...namedSeries) {
			n := 0
			for _, s := range series {
				n += len(s.pts)
			}
			if n == 0 {
				return
			}
			d.Panels = append(d.Panels, panel(g, len(d.Panels)*g.panelHeight, title, unit, t0, t1, series))
		}
		add("Heart rate", "/min", namedSeries{"Heart rate", "series-hr", hr})
		add("Blood pressure", "mmHg", namedSeries{"Systolic", "series-sys", sys}, namedSeries{"Diastolic", "series-dia", dia})
		add("Weight", "kg", namedSeries{"Weight", "series-wt", wt})
		d.AxisY = len(d.Panels)*g.panelHeight + g.axisHeight - 8
		d.Height = len(d.Panels)*g.panelHeight + g.axisHeight
		return d
	}
	c.Wide, c.Narrow = draw(wideGeometry), draw(narrowGeometry)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].When > rows[j].When })
	c.Rows = rows
	return c
}

type namedSeries struct {
	name, class string
	pts         []point
}

// panel lays out one measure: a y range padded around its values, and
// each series as a polyline with a dot per measurement.
func panel(g geometry, y int, title, unit string, t0, t1 time.Time, series []namedSeries) vitalsPanel {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.pts {
			lo, hi = math.Min(lo, p.v), math.Max(hi, p.v)
		}
	}
	pad := (hi - lo) * 0.1
	if pad == 0 {
		pad = math.Max(1, math.Abs(hi)*0.05)
	}
	lo, hi = math.Floor(lo-pad), math.Ceil(hi+pad)
	span := t1.Sub(t0).Seconds()
	xOf := func(t time.Time) float64 {
		if span <= 0 {
			return float64(g.plotLeft+g.plotRight) / 2
		}
		return float64(g.plotLeft) + float64(g.plotRight-g.plotLeft)*t.Sub(t0).Seconds()/span
	}
	yOf := func(v float64) float64 {
		return float64(y+g.plotBottom) - float64(g.plotBottom-g.plotTop)*(v-lo)/(hi-lo)
	}
	vp := vitalsPanel{Title: title + " (" + unit + ")", Unit: unit, Y: y, TitleY: y + g.plotTop - 10, PlotTop: y + g.plotTop, PlotBottom: y + g.plotBottom,
		YMax: FmtNum(hi), YMin: FmtNum(lo), YMaxY: y + g.plotTop + 4, YMinY: y + g.plotBottom}
	for _, s := range series {
		pts := append([]point(nil), s.pts...)
		sort.Slice(pts, func(i, j int) bool { return pts[i].t.Before(pts[j].t) })
		vs := vitalsSeries{Name: s.name, Class: s.class}
		var sb strings.Builder
		for i, p := range pts {
			x, yy := fmtCoord(xOf(p.t)), fmtCoord(yOf(p.v))
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(x + "," + yy)
			vs.Dots = append(vs.Dots, vitalsDot{X: x, Y: yy, Label: p.t.UTC().Format(time.DateOnly) + ": " + s.name + " " + FmtNum(p.v) + " " + unit})
		}
		vs.Points = sb.String()
		vp.Series = append(vp.Series, vs)
	}
	return vp
}

func fmtCoord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func FmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
