package main

// The micro-benchmarks' output (go test -bench), parsed for the report.

import (
	"strconv"
	"strings"
)

func benchtimeText(bt string) string {
	if bt == "" {
		return "go test's default benchtime (1 s per benchmark)"
	}
	return "`-benchtime " + bt + "`"
}

// microRow is one benchmark line of go test -bench output.
type microRow struct {
	pkg, name string
	metrics   map[string]string
	order     []string
}

func (m microRow) other() string {
	var parts []string
	for _, u := range m.order {
		switch u {
		case "ns/op", "B/op", "allocs/op":
		default:
			parts = append(parts, m.metrics[u]+" "+u)
		}
	}
	return strings.Join(parts, ", ")
}

func parseMicro(out string) []microRow {
	var rows []microRow
	pkg := ""
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/rotation-suite/rotation/")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		row := microRow{pkg: pkg, name: name, metrics: map[string]string{}}
		for i := 2; i+1 < len(f); i += 2 {
			row.metrics[f[i+1]] = f[i]
			row.order = append(row.order, f[i+1])
		}
		rows = append(rows, row)
	}
	return rows
}
