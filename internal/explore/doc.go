// Package explore is the model-based exploration of the whole rotation state
// machine: it drives the real engine (pkg/rotation) over the real-rules
// Secrets Manager fake (internal/smfake) through sequences of actions — steps
// in any order and with any token, processes killed inside any call, the
// service's retries, new rotations, two execution environments interleaved
// call by call, `rotate unstick` in both modes, an operator's
// PutSecretValue, the read-only probe — and after every action proves the
// invariants:
//
//   - exactly one version is AWSCURRENT, at most one AWSPENDING;
//   - AWSCURRENT has a value, and the target accepts it (or, while a rotation
//     is open, the pending value: single-user database rotation changes the
//     one password in setSecret);
//   - no version that had a value ever changed;
//   - nothing was promoted that did not pass the strategy's testSecret
//     (versions an operator wrote are exempt);
//   - no more rotation.succeeded notifications for a version than the
//     engines made AWSCURRENT moves onto it;
//   - whatever the Subject adds (tokens, keys, grace periods).
//
// It owns the harness only: the alphabet (Action), the world (World: the
// fake, a clock that moves only when told, two execution environments),
// exhaustive and random exploration with shrinking (Explore, Search), and
// replay (Replay). The strategies, their in-memory targets and their own
// invariants are Subjects, wired in this package's tests (the harness sits
// below functions/ in the layering and imports none of them).
//
// Determinism: tokens and version ids are counters, the clock moves by
// World.ActionTime before each action, a kill is a fault hook
// (rotation.WithFaultHook) on call N, and a Concurrent action hands control
// between the two invocations through channels at call N, so only one runs
// at any moment. Random sequences come from a PCG seeded with (seed, index);
// a run prints its seed, and a failing sequence prints as a Go slice literal
// that pastes into a regression test. docs/exploration.md says how to replay.
package explore
