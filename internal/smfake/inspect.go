package smfake

// What tests read and do beside the API: versions and labels without
// counting a call, the service's end-of-rotation step, call counts.

import (
	"sort"
	"time"
)

// Version describes one version of a secret (never its value).
type Version struct {
	ID       string
	Stages   []string // sorted
	HasValue bool     // false for RotateSecret's empty placeholder
	Created  time.Time
}

// Versions lists every version of the secret, deprecated ones included, in
// creation order.
func (f *Fake) Versions(secretID string) ([]Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(&secretID)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(s.order))
	for _, id := range s.order {
		v := s.versions[id]
		st := append([]string(nil), v.stages...)
		sort.Strings(st)
		out = append(out, Version{ID: id, Stages: st, HasValue: v.hasValue, Created: v.created})
	}
	return out, nil
}

// Stages returns version id → sorted labels for labelled versions (what
// DescribeSecret's VersionIdsToStages holds), without counting a call.
func (f *Fake) Stages(secretID string) (map[string][]string, error) {
	vs, err := f.Versions(secretID)
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, v := range vs {
		if len(v.Stages) > 0 {
			m[v.ID] = v.Stages
		}
	}
	return m, nil
}

// RemovePending does what the service does after a rotation ends: it takes
// AWSPENDING off the version that carries it. If that version also carries
// AWSCURRENT (a successful rotation), LastRotatedDate is set. An empty
// placeholder left by a failed rotation is dropped altogether (the real
// service would leave it, blocking the next RotateSecret; tests use this to
// model an operator's clean-up). No pending label: no-op.
func (f *Fake) RemovePending(secretID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(&secretID)
	if err != nil {
		return err
	}
	p := s.holder(StagePending)
	if p == nil {
		return nil
	}
	p.remove(StagePending)
	if p.has(StageCurrent) {
		now := f.now()
		s.lastRotated = &now
	}
	if !p.hasValue && len(p.stages) == 0 {
		delete(s.versions, p.id)
		for i, id := range s.order {
			if id == p.id {
				s.order = append(s.order[:i], s.order[i+1:]...)
				break
			}
		}
	}
	return nil
}

// Calls returns how many times op (e.g. "PutSecretValue") was called.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// CallCounts returns a copy of the per-operation call counts.
func (f *Fake) CallCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]int, len(f.calls))
	for k, v := range f.calls {
		m[k] = v
	}
	return m
}

// ResetCalls zeroes the call counts.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[string]int{}
}
