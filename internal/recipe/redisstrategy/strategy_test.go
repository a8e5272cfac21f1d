package redisstrategy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/rotation-suite/rotation/internal/contracttest"
	"github.com/rotation-suite/rotation/internal/crashtest"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/explore"
	"github.com/rotation-suite/rotation/internal/recipe/redisstrategy"
	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

const (
	adminValue   = `{"username":"admin","password":"admin-password-0001"}`
	initialValue = `{"username":"app","password":"initial-password-0001","host":"redis.internal","port":6379}`
)

// subject is the strategy over a MemACL, for the contract and the explorer.
type subject struct {
	acl      *redisstrategy.MemACL
	adminARN string
	// wrap, if set, replaces the strategy (a deliberately broken one).
	wrap func(*redisstrategy.Strategy) rotation.Strategy
}

func newSubject() explore.Subject { return &subject{acl: redisstrategy.NewMemACL()} }

func (s *subject) Setup(ctx context.Context, w *explore.World) ([]string, error) {
	s.acl.SetUser("admin", "admin-password-0001")
	s.acl.SetUser("app", "initial-password-0001")
	var err error
	if s.adminARN, err = w.CreateSecret(ctx, "redis-admin", []byte(adminValue)); err != nil {
		return nil, err
	}
	arn, err := w.CreateSecret(ctx, "redis-app", []byte(initialValue))
	return []string{arn}, err
}

func (s *subject) Strategy(*explore.World) (rotation.Strategy, error) {
	st, err := redisstrategy.New(redisstrategy.Config{AdminSecretARN: s.adminARN, PasswordLength: 32}, redisstrategy.Deps{ACL: s.acl})
	if err != nil || s.wrap == nil {
		return st, err
	}
	return s.wrap(st), nil
}

func accepts(ctx context.Context, acl *redisstrategy.MemACL, value []byte) error {
	var v struct{ Username, Password string }
	if err := json.Unmarshal(value, &v); err != nil {
		return err
	}
	return acl.Auth(ctx, v.Username, v.Password)
}

func (s *subject) Accepts(ctx context.Context, _ *explore.World, _ int, value []byte) error {
	return accepts(ctx, s.acl, value)
}

func (s *subject) Check(context.Context, *explore.World) error { return nil }

func TestRedisKeepsTheRotationContract(t *testing.T) { contracttest.Run(t, newSubject) }

// The same exploration budget as the shipped strategies (internal/explore):
// at least 10,000 sequences, exhaustive to depth 2 and then random.
func TestRedisExploration(t *testing.T) {
	ctx := context.Background()
	points, calls, err := explore.KillPoints(ctx, newSubject)
	if err != nil {
		t.Fatal(err)
	}
	alphabet := append(explore.Alphabet(1, points),
		explore.Action{Kind: explore.Concurrent, N: 1, A: explore.Side{Step: rotation.StepFinish}, B: explore.Side{Step: rotation.StepFinish}},
		explore.Action{Kind: explore.Concurrent, N: points[len(points)-1], Phase: rotation.After, A: explore.Side{}, B: explore.Side{}})
	explore.Explore(t, "redis", newSubject, explore.Options{Alphabet: alphabet, Depth: 2, Random: 9600, Length: 6,
		Generate: explore.Generator(1, calls+2), Seed: 1})
}

// A hook that removes the password it has just promoted is caught by the
// contract's first rule: the contract can fail.
type dropsCurrent struct{ *redisstrategy.Strategy }

func (d dropsCurrent) AfterFinish(ctx context.Context, req *rotation.FinishRequest) (*rotation.FinishResponse, error) {
	var v struct{ Username, Password string }
	_ = json.Unmarshal(req.Current.Value.Bytes(), &v)
	return nil, rotation.Call(ctx, "redis:acl-remove", func(ctx context.Context) error {
		return brokenACL.RemovePassword(ctx, "admin", "admin-password-0001", v.Username, v.Password)
	})
}

var brokenACL *redisstrategy.MemACL

func TestTheContractCatchesAHookThatRemovesTheNewPassword(t *testing.T) {
	broken := func() explore.Subject {
		s := &subject{acl: redisstrategy.NewMemACL()}
		brokenACL = s.acl
		s.wrap = func(st *redisstrategy.Strategy) rotation.Strategy { return dropsCurrent{st} }
		return s
	}
	err := contracttest.Play(context.Background(), broken, contracttest.Rules[0])
	if err == nil {
		t.Fatal("the contract passed a strategy whose hook removes the promoted password")
	}
	t.Logf("caught as expected: %v", err)
}

// Every Secrets Manager and ACL call of a rotation (the hook's GETUSER and
// removal included) fails once, before it is made and after it took effect;
// the AWSCURRENT password keeps working and the service's retry converges.
func TestEveryCrashPointConvergesAndTheCurrentPasswordKeepsWorking(t *testing.T) {
	var acls = map[string]*redisstrategy.MemACL{}
	var sm *smfake.Fake
	h := crashtest.Harness{
		Setup: func(t *testing.T) (string, *driver.Driver) {
			sm = smfake.New()
			acl := redisstrategy.NewMemACL()
			acl.SetUser("admin", "admin-password-0001")
			acl.SetUser("app", "initial-password-0001")
			admin := createSecret(t, sm, "redis-admin", adminValue)
			id := createSecret(t, sm, "redis-app", initialValue)
			acls[id] = acl
			st, err := redisstrategy.New(redisstrategy.Config{AdminSecretARN: admin, PasswordLength: 32}, redisstrategy.Deps{ACL: acl})
			if err != nil {
				t.Fatal(err)
			}
			eng, err := rotation.New(rotation.Config{Secrets: sm, Strategy: st, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			d := &driver.Driver{SM: sm, Invoke: eng, LambdaARN: explore.LambdaARN}
			// Two rotations first, so that the measured one leaves a version
			// without a label and its hook removes a password.
			for range 2 {
				if _, err := d.Rotate(context.Background(), id, ""); err != nil {
					t.Fatal(err)
				}
			}
			return id, d
		},
		Check: func(ctx context.Context, id string, value []byte) error {
			if err := accepts(ctx, acls[id], value); err != nil {
				return fmt.Errorf("Redis refuses the value: %w", err)
			}
			return nil
		},
	}
	h.SM = lazySM{&sm}
	points := crashtest.Run(t, h)
	ops := map[string]bool{}
	for _, p := range points {
		ops[p.Op] = true
	}
	for _, op := range []string{"redis:acl-add", "redis:auth", "redis:acl-getuser", "redis:acl-remove"} {
		if !ops[op] {
			t.Errorf("no failure point at %s", op)
		}
	}
}

func TestFiveRotationsLeaveTheUserWithTheCurrentAndThePreviousPasswordOnly(t *testing.T) {
	ctx := context.Background()
	s := newSubject().(*subject)
	w, err := explore.NewWorld(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		w.Apply(ctx, explore.Action{Kind: explore.Rotate})
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.acl.PasswordCount("app"); n != 2 {
		t.Fatalf("the user has %d passwords, want 2 (current and previous)", n)
	}
	if err := accepts(ctx, s.acl, []byte(w.Previous(ctx, 0))); err != nil {
		t.Fatalf("the previous password must work until the next rotation: %v", err)
	}
}

// countingACL counts the removals the hook asks for.
type countingACL struct {
	*redisstrategy.MemACL
	removes int
}

func (c *countingACL) RemovePassword(ctx context.Context, au, ap, user, pw string) error {
	c.removes++
	return c.MemACL.RemovePassword(ctx, au, ap, user, pw)
}

// A password is removed once: later hooks list the same unlabelled versions
// but see through ACL GETUSER that the user no longer has their passwords.
func TestEachHookRemovesOnlyThePasswordThatJustLostItsLabel(t *testing.T) {
	ctx := context.Background()
	s := newSubject().(*subject)
	counting := &countingACL{MemACL: s.acl}
	s.wrap = func(*redisstrategy.Strategy) rotation.Strategy {
		st, err := redisstrategy.New(redisstrategy.Config{AdminSecretARN: s.adminARN, PasswordLength: 32}, redisstrategy.Deps{ACL: counting})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	w, err := explore.NewWorld(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		before := counting.removes
		w.Apply(ctx, explore.Action{Kind: explore.Rotate})
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		want := 1
		if i == 1 { // the first rotation leaves no version without a label
			want = 0
		}
		if got := counting.removes - before; got != want {
			t.Fatalf("rotation %d: the hook removed %d passwords, want %d", i, got, want)
		}
	}
}
