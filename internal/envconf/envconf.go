// Package envconf reads a rotation function's configuration from its
// environment, the same way for every function: one grammar per kind of value
// (durations, whole numbers, booleans, choices), every problem collected and
// reported at once as one configuration error at cold start, and warnings for
// settings that work but are risky. It owns the parsing and the error's
// wording; what each variable means, its default and its bounds belong to the
// strategy package that reads it (its ConfigFromEnv).
//
// Durations, the one grammar (docs/configuration.md):
//
//   - whole hours, minutes, seconds or milliseconds, as Go writes
//     durations: 90s, 90m, 36h, 1h30m, 500ms;
//   - a whole number of days: 7d, 30d;
//   - 0, where the variable allows it (DurationOrOff).
//
// A bare number other than 0 ("86400") is refused: it has no unit, and a
// reader cannot tell seconds from minutes or days. Fractions (1.5h) and
// units below a millisecond are refused too, so that DurationPattern, the
// stacks' AllowedPattern, accepts exactly what ParseDuration does.
package envconf

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// DurationPattern is the grammar as a regular expression: the
// AllowedPattern of every duration parameter of the stacks (a test holds
// them to it). Bounds are checked by the function, not by the pattern.
const DurationPattern = `^(0|[0-9]+d|([0-9]+(h|m|s|ms))+)$`

var durationRE = regexp.MustCompile(DurationPattern)

// Day is 24 hours, the unit of the "d" suffix.
const Day = 24 * time.Hour

// maxDays bounds the "d" suffix (ten years).
const maxDays = 3650

// Reader reads variables through getenv and collects problems and warnings.
// A value is trimmed of surrounding space; an empty value is the same as an
// unset one (CloudFormation passes empty parameters as empty strings).
type Reader struct {
	getenv   func(string) string
	problems []string
	names    []string
	warnings []string
}

// New returns a Reader over getenv (os.Getenv, or a map's lookup in tests).
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// Lookup returns the trimmed value of name and whether it is set (non-empty).
func (r *Reader) Lookup(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

// String returns the value of name, or def when it is unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.Lookup(name); ok {
		return v
	}
	return def
}

// Required returns the value of name; when it is unset it records the
// problem "NAME is required: <what>".
func (r *Reader) Required(name, what string) string {
	v, ok := r.Lookup(name)
	if !ok {
		r.Problem(name, "is required: %s", what)
	}
	return v
}

// OneOf returns the value of name, or def when it is unset; a value not in
// allowed is a problem (and def is returned).
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v, ok := r.Lookup(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.Problem(name, "%q: use one of %s", clip(v), strings.Join(allowed, ", "))
	return def
}

// Bool returns the value of name as true or false (strconv.ParseBool: 1, t,
// true, 0, f, false in any case), or def when it is unset.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.Lookup(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.Problem(name, "%q is not true or false", clip(v))
		return def
	}
	return b
}

// Int returns the value of name as a whole number in [min, max], or def when
// it is unset.
func (r *Reader) Int(name string, def, min, max int) int {
	v, ok := r.Lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.Problem(name, "%q is not a whole number", clip(v))
		return def
	}
	if n < min || n > max {
		r.Problem(name, "%d is outside %d…%d", n, min, max)
		return def
	}
	return n
}

// Duration returns the value of name in the duration grammar, within
// [min, max], or def when it is unset.
func (r *Reader) Duration(name string, def, min, max time.Duration) time.Duration {
	return r.duration(name, def, min, max, false)
}

// DurationOrOff is Duration that also accepts 0, which the caller reads as
// "off" (for example: never expire).
func (r *Reader) DurationOrOff(name string, def, min, max time.Duration) time.Duration {
	return r.duration(name, def, min, max, true)
}

func (r *Reader) duration(name string, def, min, max time.Duration, zeroOK bool) time.Duration {
	v, ok := r.Lookup(name)
	if !ok {
		return def
	}
	d, err := ParseDuration(v)
	if err != nil {
		r.Problem(name, "%q %v", clip(v), err)
		return def
	}
	if d == 0 && zeroOK {
		return 0
	}
	if d < min || d > max {
		off := ""
		if zeroOK {
			off = ", or 0 to turn it off"
		}
		r.Problem(name, "%s is outside %s…%s%s", FormatDuration(d), FormatDuration(min), FormatDuration(max), off)
		return def
	}
	return d
}

// Problem records that name's value is wrong; the message follows the
// name: Problem("JWT_RSA_BITS", "%q: use 2048 or 3072", v).
func (r *Reader) Problem(name, format string, args ...any) {
	r.names = append(r.names, name)
	r.problems = append(r.problems, name+" "+fmt.Sprintf(format, args...))
}

// Warn records a warning: the setting works, but is risky. Functions log
// warnings once at start-up.
func (r *Reader) Warn(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

// Warnings returns the warnings recorded so far.
func (r *Reader) Warnings() []string { return append([]string(nil), r.warnings...) }

// Err returns nil when no problem was recorded, or one error of class
// configuration that lists every problem, so a deploy shows all of them at
// once. Its operation is the first variable at fault.
func (r *Reader) Err() error {
	if len(r.problems) == 0 {
		return nil
	}
	return rotation.NewError(rotation.ClassConfiguration, r.names[0],
		"the function's environment is invalid; fix it and redeploy: "+strings.Join(r.problems, "; "), nil)
}

// ParseDuration parses the duration grammar: whole hours, minutes, seconds
// or milliseconds as Go writes them (90s, 90m, 36h, 1h30m, 500ms), a whole
// number of days (7d), or 0. Bare numbers other than 0, fractions, signs
// and smaller units are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	switch {
	case s != "" && strings.Trim(s, "0123456789") == "" && s != "0":
		return 0, fmt.Errorf("has no unit: write it like 90m, 36h or 7d")
	case strings.HasPrefix(s, "-"):
		return 0, fmt.Errorf("is negative")
	case !durationRE.MatchString(s):
		return 0, fmt.Errorf("is not a duration: write it like 90m, 36h or 7d")
	case s == "0":
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > maxDays {
			return 0, fmt.Errorf("is longer than %d days", maxDays)
		}
		return time.Duration(n) * Day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("is not a duration: write it like 90m, 36h or 7d")
	}
	return d, nil
}

// FormatDuration writes d in the grammar, in its largest whole unit: "7d",
// "36h", "90m", "90s", else milliseconds (anything finer is cut).
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%Day == 0:
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

// clip keeps a hostile value from flooding the error: values are shown
// quoted, at most 64 bytes.
func clip(v string) string {
	if len(v) > 64 {
		return v[:64] + "…"
	}
	return v
}
