package explore

import (
	"fmt"
	"strings"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Kind is what an Action does.
type Kind int

// The alphabet. Every action acts on one rotated secret (Action.Secret); the
// clock moves by World.ActionTime before each action.
const (
	// Start is a RotateSecret with a fresh token whose invocation is lost:
	// the placeholder exists, no step ran.
	Start Kind = iota + 1
	// Rotate is a RotateSecret with a fresh token followed by the service's
	// run of the four steps (and its removal of AWSPENDING on success).
	Rotate
	// Service is the service's retry of the whole open rotation: the four
	// steps in order with the newest token, stopping at the first failure.
	Service
	// Invoke runs one step (Action.Step) with the newest token
	// (Action.Stale: the token before it), as `make invoke` or a stray
	// event would.
	Invoke
	// Kill is Rotate (Action.Fresh) or Service with the process killed
	// inside external call N (Action.N, counted from the run's first call;
	// Action.Phase: before the call, or after it took effect). Every later
	// call of the dead invocation fails too, the run stops, and the
	// execution environment is replaced (its caches are gone).
	Kill
	// Concurrent runs Action.A in a second execution environment up to its
	// call Action.N (Action.Phase), runs Action.B to its end in the first
	// one, then lets A finish. Only one of them runs at any moment, so the
	// interleaving is exact and replayable.
	Concurrent
	// Unstick is the operator's `rotate unstick` on the secret, in
	// Action.Mode ("resume" or "discard").
	Unstick
	// Put is an operator's PutSecretValue of a copy of the AWSCURRENT value
	// as a new AWSCURRENT version (editing a field by hand); with Mode
	// "pending", as a new AWSPENDING version instead (staging a value by
	// hand, which no rotation tested) — only while no rotation is open.
	Put
	// Probe is the read-only probeSecret step on the AWSCURRENT version.
	Probe
	// Tick moves the clock by World.TickTime (time passing between events).
	Tick
	// Rogue is not part of the alphabet: it is the old "finishSecret
	// promotes anything" (AWSCURRENT moved to the newest token, whatever it
	// holds), used to prove that the invariants catch it.
	Rogue
)

var kindNames = map[Kind]string{
	Start: "Start", Rotate: "Rotate", Service: "Service", Invoke: "Invoke", Kill: "Kill",
	Concurrent: "Concurrent", Unstick: "Unstick", Put: "Put", Probe: "Probe", Tick: "Tick", Rogue: "Rogue",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Unstick modes, and Put's.
const (
	ModeResume  = "resume"
	ModeDiscard = "discard"
	ModePending = "pending"
)

// Side is one side of a Concurrent action: a step (Step set), the service's
// run of the open rotation (Step empty), or a fresh rotation (Fresh).
type Side struct {
	Secret int
	Step   rotation.Step
	Fresh  bool
}

func (s Side) goString() string {
	var f []string
	if s.Secret != 0 {
		f = append(f, fmt.Sprintf("Secret: %d", s.Secret))
	}
	if s.Step != "" {
		f = append(f, "Step: "+stepConst(s.Step))
	}
	if s.Fresh {
		f = append(f, "Fresh: true")
	}
	return "explore.Side{" + strings.Join(f, ", ") + "}"
}

func (s Side) short() string {
	what := "service"
	switch {
	case s.Step != "":
		what = string(s.Step)
	case s.Fresh:
		what = "rotate"
	}
	return fmt.Sprintf("%s#%d", what, s.Secret)
}

// Action is one letter of the alphabet. The zero values of unused fields
// are ignored.
type Action struct {
	Kind   Kind
	Secret int           // which rotated secret (0 in worlds with one)
	Step   rotation.Step // Invoke
	Stale  bool          // Invoke: use the token before the newest
	Fresh  bool          // Kill: a new rotation rather than the retry of the open one
	N      int           // Kill, Concurrent: the 1-based call number
	Phase  rotation.Phase
	A, B   Side   // Concurrent
	Mode   string // Unstick
}

func stepConst(s rotation.Step) string {
	switch s {
	case rotation.StepCreate:
		return "rotation.StepCreate"
	case rotation.StepSet:
		return "rotation.StepSet"
	case rotation.StepTest:
		return "rotation.StepTest"
	case rotation.StepFinish:
		return "rotation.StepFinish"
	}
	return fmt.Sprintf("rotation.Step(%q)", string(s))
}

// GoString prints the action as a Go composite literal, so a failing
// sequence pastes into a regression test.
func (a Action) GoString() string {
	f := []string{"Kind: explore." + a.Kind.String()}
	if a.Secret != 0 {
		f = append(f, fmt.Sprintf("Secret: %d", a.Secret))
	}
	if a.Step != "" {
		f = append(f, "Step: "+stepConst(a.Step))
	}
	if a.Stale {
		f = append(f, "Stale: true")
	}
	if a.Fresh {
		f = append(f, "Fresh: true")
	}
	if a.N != 0 {
		f = append(f, fmt.Sprintf("N: %d", a.N))
	}
	if a.Phase == rotation.After {
		f = append(f, "Phase: rotation.After")
	}
	if a.Kind == Concurrent {
		f = append(f, "A: "+a.A.goString(), "B: "+a.B.goString())
	}
	if a.Mode != "" {
		f = append(f, fmt.Sprintf("Mode: %q", a.Mode))
	}
	return "{" + strings.Join(f, ", ") + "}"
}

// String is a short human form for traces.
func (a Action) String() string {
	ph := "before"
	if a.Phase == rotation.After {
		ph = "after"
	}
	s := fmt.Sprintf("#%d ", a.Secret)
	switch a.Kind {
	case Invoke:
		tok := "open"
		if a.Stale {
			tok = "stale"
		}
		return s + string(a.Step) + "(" + tok + ")"
	case Kill:
		what := "service"
		if a.Fresh {
			what = "rotate"
		}
		return fmt.Sprintf("%skill %s in call %d %s", s, what, a.N, ph)
	case Concurrent:
		return fmt.Sprintf("concurrent %s paused in call %d %s, %s runs", a.A.short(), a.N, ph, a.B.short())
	case Unstick:
		return s + "unstick --" + a.Mode
	case Put:
		if a.Mode == ModePending {
			return s + "put AWSPENDING"
		}
		return s + "put AWSCURRENT"
	}
	return s + strings.ToLower(a.Kind.String())
}

// Literal prints a sequence as a Go slice literal.
func Literal(seq []Action) string {
	var b strings.Builder
	b.WriteString("[]explore.Action{\n")
	for _, a := range seq {
		b.WriteString("\t" + a.GoString() + ",\n")
	}
	b.WriteString("}")
	return b.String()
}
