package envconf

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestTheDurationGrammarIsGoDurationsWholeDaysOrZero(t *testing.T) {
	good := map[string]time.Duration{
		"90s": 90 * time.Second, "90m": 90 * time.Minute, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute,
		"7d": 7 * Day, "0d": 0, "0": 0, " 24h ": 24 * time.Hour, "3650d": 3650 * Day, "500ms": 500 * time.Millisecond, "1m30s": 90 * time.Second,
	}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"86400", "24", "-1h", "-1d", "+1d", "1.5d", "7 d", "d", "1w", "3651d", "abc", "", "1.5h", "10us", "1h-30m", "+1h", "00x"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
}

func TestABareNumberIsRefusedWithTheUnitsToUse(t *testing.T) {
	_, err := ParseDuration("86400")
	if err == nil || !strings.Contains(err.Error(), "no unit") || !strings.Contains(err.Error(), "7d") {
		t.Fatalf("err = %v", err)
	}
}

func TestFormatDurationRoundTripsThroughTheGrammar(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, 90 * time.Second, 90 * time.Minute, 36 * time.Hour, 7 * Day, 1500 * time.Millisecond, 90 * time.Minute} {
		s := FormatDuration(d)
		back, err := ParseDuration(s)
		if err != nil || back != d {
			t.Errorf("%v → %q → %v, %v", d, s, back, err)
		}
	}
	if got := FormatDuration(30 * Day); got != "30d" {
		t.Errorf("FormatDuration(30d) = %q", got)
	}
}

func TestEveryProblemIsReportedAtOnceAsOneConfigurationError(t *testing.T) {
	r := New(env(map[string]string{"A": "86400", "B": "maybe", "C": "9", "D": "x", "E": "2h"}))
	if got := r.Duration("A", time.Hour, time.Minute, Day); got != time.Hour {
		t.Errorf("a bad value must leave the default, got %v", got)
	}
	r.Bool("B", false)
	r.Int("C", 1, 1, 5)
	r.OneOf("D", "y", "y", "z")
	r.Duration("E", time.Hour, time.Minute, time.Hour)
	r.Required("F", "the thing")
	err := r.Err()
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("class %q: %v", rotation.ClassOf(err), err)
	}
	for _, want := range []string{"A \"86400\" has no unit", "B \"maybe\" is not true or false", "C 9 is outside 1…5", "D \"x\": use one of y, z", "E 2h is outside 1m…1h", "F is required: the thing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestUnsetAndEmptyVariablesTakeTheDefault(t *testing.T) {
	r := New(env(map[string]string{"EMPTY": "  "}))
	if r.String("EMPTY", "d") != "d" || r.Duration("UNSET", time.Hour, 0, Day) != time.Hour || !r.Bool("EMPTY", true) || r.Int("UNSET", 7, 0, 9) != 7 {
		t.Fatal("an unset or blank variable must take the default")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestZeroTurnsADurationOffOnlyWhereTheVariableAllowsIt(t *testing.T) {
	r := New(env(map[string]string{"G": "0"}))
	if got := r.DurationOrOff("G", Day, time.Minute, 10*365*Day); got != 0 {
		t.Fatalf("DurationOrOff(0) = %v", got)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	r2 := New(env(map[string]string{"G": "0"}))
	r2.Duration("G", Day, time.Minute, 10*365*Day)
	if r2.Err() == nil {
		t.Fatal("Duration must refuse 0 below its minimum")
	}
	r3 := New(env(map[string]string{"G": "30s"}))
	r3.DurationOrOff("G", Day, time.Minute, Day)
	if err := r3.Err(); err == nil || !strings.Contains(err.Error(), "or 0 to turn it off") {
		t.Fatalf("err = %v", err)
	}
}

func TestWarningsAreKeptApartFromProblems(t *testing.T) {
	r := New(env(nil))
	r.Warn("overlap %s is short", "1m")
	if r.Err() != nil || len(r.Warnings()) != 1 || r.Warnings()[0] != "overlap 1m is short" {
		t.Fatalf("warnings %v err %v", r.Warnings(), r.Err())
	}
}

func TestAHostileValueIsClippedInTheError(t *testing.T) {
	r := New(env(map[string]string{"B": strings.Repeat("x", 5000)}))
	r.Bool("B", false)
	if len(r.Err().Error()) > 300 {
		t.Fatalf("error is %d bytes", len(r.Err().Error()))
	}
}

// The stacks' AllowedPattern and the parser agree on every sample: a value
// CloudFormation lets through is one the function can read.
func TestDurationPatternAcceptsExactlyWhatParseDurationDoes(t *testing.T) {
	re := regexp.MustCompile(DurationPattern)
	for _, s := range []string{"90s", "90m", "36h", "1h30m", "500ms", "7d", "0", "0d", "86400", "24", "-1h", "1.5h",
		"7 d", "1w", "", "abc", "10us", "1h-30m", "+1h", "1d12h", "h", "1hh", "2400h", "30d"} {
		_, err := ParseDuration(s)
		if re.MatchString(s) != (err == nil) {
			t.Errorf("%q: pattern matches %v, ParseDuration error %v", s, re.MatchString(s), err)
		}
	}
}
