package main

// The performance goals and the verdict of each measurement against them.

import (
	"fmt"
	"math"
	"strconv"
)

// The suite's performance goals.
const (
	// One call above the bare contract's 8 / 7: testSecret moves the
	goalSMAlternating = 9
	goalSMSingle      = 8
	goalDBAlternating = 3
	goalDBSingle      = 2
	goalColdStartMS   = 10
	goalBinaryBytes   = 16e6
	goalPeakMemBytes  = 25e6
	goalScaleSecrets  = 1000
)

type goalRow struct{ goal, target, figure, verdict string }

const (
	verdictMet     = "met"
	verdictMissed  = "**missed**"
	verdictMissing = "**not measured**"
)

func verdict(ok bool) string {
	if ok {
		return verdictMet
	}
	return verdictMissed
}

// failedLoginsTotal adds every failed login seen in any rotation.
func (r *results) failedLoginsTotal() (total, rotations int) {
	for _, s := range r.series {
		for _, x := range s.samples {
			total += x.failedLogins()
			rotations++
		}
	}
	for _, c := range r.cold {
		total += c.first.failedLogins() + c.second.failedLogins()
		rotations += 2
	}
	if r.scale != nil {
		total += max(r.scale.failedConn, r.scale.log.failedLogins)
		rotations += r.scale.secrets
	}
	return total, rotations
}

func (r *results) goals() []goalRow {
	var rows []goalRow
	for _, g := range []struct {
		key, what string
		target    float64
	}{{"db-alternating", "alternating-user", goalSMAlternating}, {"db-single", "single-user", goalSMSingle}} {
		row := goalRow{goal: "Secrets Manager calls per " + g.what + " database rotation, warm environment", target: "≤ " + num(g.target)}
		if s := r.seriesFor(g.key); s != nil {
			calls := collect(s.samples, func(x sample) float64 { return float64(x.smCalls()) })
			wire := collect(s.samples, func(x sample) float64 { return float64(x.wireSM()) })
			sdk := collect(s.samples, func(x sample) float64 { return float64(x.sdkSM()) })
			row.figure = fmt.Sprintf("median %s, p95 %s, max %s (SDK middleware: max %s; HTTP requests on the wire: max %s)", num(median(calls)), num(percentile(calls, 95)), num(maximum(calls)), num(maximum(sdk)), num(maximum(wire)))
			row.verdict = verdict(math.Max(maximum(calls), math.Max(maximum(sdk), maximum(wire))) <= g.target)
		} else {
			row.verdict = verdictMissing
		}
		rows = append(rows, row)
	}
	for _, g := range []struct {
		key, what string
		target    float64
	}{{"db-alternating", "alternating-user", goalDBAlternating}, {"db-single", "single-user", goalDBSingle}} {
		row := goalRow{goal: "Database connections per " + g.what + " rotation", target: "≤ " + num(g.target)}
		if s := r.seriesFor(g.key); s != nil {
			conns := collect(s.samples, func(x sample) float64 { return float64(x.dbConnects()) })
			sess := collect(s.samples, func(x sample) float64 { return float64(x.log.sessions) })
			row.figure = fmt.Sprintf("median %s, max %s connects; server log: max %s sessions", num(median(conns)), num(maximum(conns)), num(maximum(sess)))
			row.verdict = verdict(math.Max(maximum(conns), maximum(sess)) <= g.target)
		} else {
			row.verdict = verdictMissing
		}
		rows = append(rows, row)
	}
	{
		total, n := r.failedLoginsTotal()
		row := goalRow{goal: "Failed database logins on the happy path", target: "0",
			figure: fmt.Sprintf("%d in %d rotations (failed connects seen by the strategy and `password authentication failed` lines in the server log)", total, n)}
		row.verdict = verdict(total == 0)
		if r.seriesFor("db-single") == nil || r.seriesFor("db-alternating") == nil || r.scale == nil {
			row.verdict = verdictMissing
		}
		rows = append(rows, row)
	}
	for _, f := range functionNames {
		row := goalRow{goal: "Cold start to ready for the first event: " + f, target: "≤ " + num(goalColdStartMS) + " ms", verdict: verdictMissing}
		for _, c := range r.coldStarts {
			if c.function == f {
				t := durationsMS(c.times)
				row.figure = fmt.Sprintf("median %s ms (min %s, max %s of %d)", msf(median(t)), msf(minimum(t)), msf(maximum(t)), len(t))
				row.verdict = verdict(median(t) <= goalColdStartMS)
			}
		}
		rows = append(rows, row)
	}
	for _, f := range functionNames {
		row := goalRow{goal: "Binary size, linux/arm64, stripped: " + f, target: "≤ 16 MB", verdict: verdictMissing}
		for _, b := range r.sizes {
			if b.function == f {
				row.figure = mb(b.bytes)
				row.verdict = verdict(b.bytes <= goalBinaryBytes)
			}
		}
		rows = append(rows, row)
	}
	for _, key := range []string{"db-single", "db-alternating", "jwt", "apikey"} {
		row := goalRow{goal: "Peak memory (VmHWM) of a rotation: " + key, target: "≤ 25 MB", verdict: verdictMissing}
		for _, c := range r.cold {
			if c.sub.key == key {
				row.goal = "Peak memory (VmHWM) of a rotation: " + c.sub.label
				row.figure = fmt.Sprintf("%s (fresh process: start-up and one rotation); %s after a second rotation; largest VmRSS sampled every ms %s", mb(c.hwmFirst), mb(c.hwmSecond), mb(c.sampledRSS))
				row.verdict = verdict(max(c.hwmFirst, c.hwmSecond, c.sampledRSS) <= goalPeakMemBytes)
			}
		}
		rows = append(rows, row)
	}
	{
		row := goalRow{goal: "Scale: alternating-user database rotations that succeed, concurrency " + strconv.Itoa(r.opts.concurrency), target: "1000 of 1000", verdict: verdictMissing}
		row2 := goalRow{goal: "Scale: AWSCURRENT credentials that log in afterwards", target: "1000 of 1000", verdict: verdictMissing}
		if sc := r.scale; sc != nil {
			row.figure = fmt.Sprintf("%d of %d", sc.succeeded, sc.secrets)
			if sc.retried > 0 {
				row.figure += fmt.Sprintf(" (%d after a retry)", sc.retried)
			}
			row2.figure = fmt.Sprintf("%d of %d", sc.loginsOK, sc.secrets)
			row.verdict = verdict(sc.succeeded == sc.secrets)
			row2.verdict = verdict(sc.loginsOK == sc.secrets)
			if sc.secrets < goalScaleSecrets {
				note := fmt.Sprintf(" (a reduced run: -scale %d)", sc.secrets)
				row.verdict, row2.verdict = verdictMissing+note, verdictMissing+note
			}
		}
		rows = append(rows, row, row2)
	}
	return rows
}
