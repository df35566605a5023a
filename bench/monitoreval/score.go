package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/scenario"
)

// result is the score of one scenario.
type result struct {
	seed    int64
	figures figures
	// units alerted (distinct (user, patient) pairs, plus alerts that
	// name no patient) and how many of them are misuse.
	units, correct int
	// truth rows per category, found by any alert, found by an alert of
	// that category.
	rows, found, foundExact map[monitor.Category]int
	// found by an alert whose main category (the TSV's category column)
	// is the row's, naming the row's user (and patient), or its address
	// when the row names no user: how a reader of the TSV matches.
	foundMain map[monitor.Category]int
	// wrong units by the main category of an alert that made them.
	wrong map[monitor.Category]int
}

func (r result) precision() float64 {
	if r.units == 0 {
		return 0
	}
	return float64(r.correct) / float64(r.units)
}

func (r result) recall(c monitor.Category, exact bool) (float64, bool) {
	n := r.rows[c]
	if n == 0 {
		return 0, false
	}
	if exact {
		return float64(r.foundExact[c]) / float64(n), true
	}
	return float64(r.found[c]) / float64(n), true
}

func (r result) recallMain(c monitor.Category) (float64, bool) {
	if n := r.rows[c]; n > 0 {
		return float64(r.foundMain[c]) / float64(n), true
	}
	return 0, false
}

func (r result) macroMain() float64 {
	var sum float64
	var n int
	for _, c := range scenario.Categories {
		if v, ok := r.recallMain(c); ok {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// macro is the mean of the recalls of the categories injected.
func (r result) macro(exact bool) float64 {
	var sum float64
	var n int
	for _, c := range scenario.Categories {
		if v, ok := r.recall(c, exact); ok {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func evaluate(ctx context.Context, dir string) (result, error) {
	tf, err := os.Open(filepath.Join(dir, "truth.tsv"))
	if err != nil {
		return result{}, err
	}
	truth, err := scenario.ParseTruth(tf)
	tf.Close()
	if err != nil {
		return result{}, err
	}
	f, err := scoreDir(ctx, dir)
	if err != nil {
		return result{}, err
	}
	res := score(truth, f.List)
	res.figures = f
	return res, writeAlerts(filepath.Join(dir, "alerts.tsv"), truth, f.List)
}

// writeAlerts writes every alerted unit with its verdict, for reading
// the false positives: verdict, user, patient, address, category,
// score, explanation.
func writeAlerts(path string, truth []scenario.TruthRow, alerts []monitor.Alert) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	for _, a := range alerts {
		ps := a.Patients
		if len(ps) == 0 {
			ps = []string{""}
		}
		for _, p := range ps {
			one := a
			one.Patients = nil
			if p != "" {
				one.Patients = []string{p}
			}
			verdict := "wrong"
			if r := score(truth, []monitor.Alert{one}); r.correct > 0 {
				verdict = "right"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%.3f\t%s\n", verdict, a.User, p, a.Address, a.Category, a.Score, a.Explanation)
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// group puts the user-level categories in two families: a user-level
// alert is right about a patient it lists when the user has a truth row
// of the same family (a spike of volume the engine calls browsing is
// still the incident).
func group(c monitor.Category) int {
	switch {
	case scenario.Attack(c):
		return 2
	case scenario.UserLevel(c):
		return 1
	}
	return 0
}

// score matches alerts against the truth.
//
// Precision: every distinct (user, patient) pair an alert lists is one
// unit, and every alert that lists no patient is one unit. A pair is
// right when it is a truth pair, or when an alert listing it has a
// user-level category (volume, bulk, browsing, or an attack) and the
// user has a truth row of the same family. A patient-less alert is right
// when its user or its address is that of a truth row of an attack or
// user-level category.
//
// Recall: a pair row is found when some alert lists the pair; an attack
// row when some alert of an attack category names its user (if it has
// one) or its address. "Exact" also asks the alert to carry the row's
// category among its Categories.
func score(truth []scenario.TruthRow, alerts []monitor.Alert) result {
	res := result{rows: map[monitor.Category]int{}, found: map[monitor.Category]int{}, foundExact: map[monitor.Category]int{},
		foundMain: map[monitor.Category]int{}, wrong: map[monitor.Category]int{}}
	type pair struct{ u, p string }
	truthPairs := map[pair]bool{}
	userFamily := map[string]map[int]bool{}
	addrFamily := map[string]bool{}
	for _, t := range truth {
		if t.Patient != "" {
			truthPairs[pair{t.User, t.Patient}] = true
		}
		if g := group(t.Category); g > 0 {
			if t.User != "" {
				if userFamily[t.User] == nil {
					userFamily[t.User] = map[int]bool{}
				}
				userFamily[t.User][g] = true
			}
			if t.Address != "" {
				addrFamily[t.Address] = true
			}
		}
	}
	cats := func(a monitor.Alert) []monitor.Category {
		if len(a.Categories) > 0 {
			return a.Categories
		}
		return []monitor.Category{a.Category}
	}
	pairCats := map[pair][]monitor.Category{}
	pairMain := map[pair]monitor.Category{}
	pairMains := map[pair][]monitor.Category{}
	pairOK := map[pair]bool{}
	for _, a := range alerts {
		cs := cats(a)
		if len(a.Patients) == 0 {
			res.units++
			ok := addrFamily[a.Address] && a.Address != ""
			for _, c := range cs {
				if g := group(c); g > 0 && userFamily[a.User][g] {
					ok = true
				}
			}
			if ok {
				res.correct++
			} else {
				res.wrong[a.Category]++
			}
			continue
		}
		for _, p := range a.Patients {
			k := pair{a.User, p}
			pairCats[k] = append(pairCats[k], cs...)
			pairMains[k] = append(pairMains[k], a.Category)
			if _, ok := pairMain[k]; !ok {
				pairMain[k] = a.Category
			}
			if truthPairs[k] {
				pairOK[k] = true
			}
			for _, c := range cs {
				if g := group(c); g > 0 && userFamily[a.User][g] {
					pairOK[k] = true
				}
			}
		}
	}
	res.units += len(pairCats)
	for k := range pairCats {
		if pairOK[k] {
			res.correct++
		} else {
			res.wrong[pairMain[k]]++
		}
	}
	for _, t := range truth {
		res.rows[t.Category]++
		var found, exact bool
		if t.Patient != "" && !scenario.Attack(t.Category) {
			cs, ok := pairCats[pair{t.User, t.Patient}]
			found, exact = ok, slices.Contains(cs, t.Category)
		} else {
			for _, a := range alerts {
				acs := cats(a)
				if !slices.ContainsFunc(acs, func(c monitor.Category) bool { return group(c) > 0 }) {
					continue
				}
				if (t.User != "" && a.User == t.User) || (t.Address != "" && a.Address == t.Address) {
					found = true
					exact = exact || slices.Contains(acs, t.Category)
				}
			}
		}
		if found {
			res.found[t.Category]++
		}
		if t.Patient != "" && !scenario.Attack(t.Category) {
			if slices.Contains(pairMains[pair{t.User, t.Patient}], t.Category) {
				res.foundMain[t.Category]++
			}
		} else if slices.ContainsFunc(alerts, func(a monitor.Alert) bool {
			return a.Category == t.Category && ((t.User != "" && a.User == t.User) || (t.User == "" && a.Address == t.Address))
		}) {
			res.foundMain[t.Category]++
		}
		if exact {
			res.foundExact[t.Category]++
		}
	}
	return res
}

func printTable(w io.Writer, size string, _ scenario.Options, rs []result) {
	fmt.Fprintf(w, "\n### %s\n\n| | ", size)
	for _, r := range rs {
		fmt.Fprintf(w, "seed %d | ", r.seed)
	}
	fmt.Fprintf(w, "mean |\n|---|")
	for range len(rs) + 1 {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	row := func(name string, v func(r result) (float64, bool), format string, mean bool) {
		fmt.Fprintf(w, "| %s | ", name)
		var sum float64
		var n int
		for _, r := range rs {
			x, ok := v(r)
			if !ok {
				fmt.Fprint(w, "– | ")
				continue
			}
			sum += x
			n++
			fmt.Fprintf(w, format+" | ", x)
		}
		if mean && n > 0 {
			fmt.Fprintf(w, format+" |\n", sum/float64(n))
		} else {
			fmt.Fprint(w, " |\n")
		}
	}
	row("AuditEvent lines", func(r result) (float64, bool) { return float64(r.figures.Lines), true }, "%.0f", false)
	row("alerts", func(r result) (float64, bool) { return float64(r.figures.Alerts), true }, "%.0f", true)
	row("alerted units (pairs + patient-less alerts)", func(r result) (float64, bool) { return float64(r.units), true }, "%.0f", true)
	row("**precision**", func(r result) (float64, bool) { return r.precision(), r.units > 0 }, "%.3f", true)
	row("**macro recall**", func(r result) (float64, bool) { return r.macro(false), true }, "%.3f", true)
	row("macro recall, category exact", func(r result) (float64, bool) { return r.macro(true), true }, "%.3f", true)
	row("macro recall, main category (TSV: user, patient, category)", func(r result) (float64, bool) { return r.macroMain(), true }, "%.3f", true)
	for _, c := range scenario.Categories {
		row("recall "+string(c)+" (rows)", func(r result) (float64, bool) {
			v, ok := r.recall(c, false)
			return v, ok
		}, "%.2f", true)
	}
	for _, c := range scenario.Categories {
		row("recall "+string(c)+", main category", func(r result) (float64, bool) {
			return r.recallMain(c)
		}, "%.2f", true)
	}
	fmt.Fprint(w, "\nwrong units by alert category (seed order): ")
	for _, c := range append([]monitor.Category{monitor.CatUnexplained}, scenario.Categories...) {
		var parts []string
		total := 0
		for _, r := range rs {
			parts = append(parts, fmt.Sprint(r.wrong[c]))
			total += r.wrong[c]
		}
		if total > 0 {
			fmt.Fprintf(w, "%s %s; ", c, strings.Join(parts, " "))
		}
	}
	fmt.Fprint(w, "\n\nrows per category (seed order): ")
	for _, c := range scenario.Categories {
		fmt.Fprintf(w, "%s", c)
		for _, r := range rs {
			fmt.Fprintf(w, " %d", r.rows[c])
		}
		fmt.Fprint(w, "; ")
	}
	fmt.Fprintln(w)
}
