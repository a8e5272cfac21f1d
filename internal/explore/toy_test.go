package explore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// toyTarget is a one-user password store.
type toyTarget struct{ password string }

// toy is a single-user password strategy over toyTarget, written for the
// harness's own tests; brokenSet makes its Set non-idempotent.
type toy struct {
	target    *toyTarget
	brokenSet bool
}

type toyValue struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func parseToy(v []byte) (toyValue, error) {
	var t toyValue
	err := json.Unmarshal(v, &t)
	return t, err
}

func (s *toy) Kind() string { return "toy" }

func (s *toy) Create(_ context.Context, req *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	cur, err := parseToy(req.Current.Value.Bytes())
	if err != nil {
		return nil, err
	}
	cur.Password = rand.Text()
	b, _ := json.Marshal(cur)
	return &rotation.CreateResponse{Value: b}, nil
}

func (s *toy) login(ctx context.Context, pw string) error {
	return rotation.Call(ctx, "toy:login", func(context.Context) error {
		if pw != s.target.password {
			return errors.New("password authentication failed")
		}
		return nil
	})
}

func (s *toy) Set(ctx context.Context, req *rotation.SetRequest) (*rotation.SetResponse, error) {
	cur, _ := parseToy(req.Current.Value.Bytes())
	pend, err := parseToy(req.Pending.Value.Bytes())
	if err != nil {
		return nil, err
	}
	if s.login(ctx, cur.Password) != nil {
		if s.login(ctx, pend.Password) == nil {
			if s.brokenSet {
				return nil, rotation.Call(ctx, "toy:alter", func(context.Context) error {
					s.target.password = pend.Password + "!" // rotates again: not idempotent
					return nil
				})
			}
			return nil, nil
		}
		return nil, rotation.NewError(rotation.ClassAuthentication, "toy:login", "the target refuses AWSCURRENT and AWSPENDING", nil)
	}
	return nil, rotation.Call(ctx, "toy:alter", func(context.Context) error {
		s.target.password = pend.Password
		return nil
	})
}

func (s *toy) Test(ctx context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	pend, err := parseToy(req.Pending.Value.Bytes())
	if err != nil {
		return nil, err
	}
	return nil, s.login(ctx, pend.Password)
}

// toySubject is the Subject over toy.
type toySubject struct {
	target    toyTarget
	brokenSet bool
}

func (t *toySubject) Setup(ctx context.Context, w *World) ([]string, error) {
	t.target.password = "initial"
	arn, err := w.CreateSecret(ctx, "toy", []byte(`{"user":"app","password":"initial"}`))
	return []string{arn}, err
}

func (t *toySubject) Strategy(*World) (rotation.Strategy, error) {
	return &toy{target: &t.target, brokenSet: t.brokenSet}, nil
}

func (t *toySubject) Accepts(_ context.Context, _ *World, _ int, value []byte) error {
	v, err := parseToy(value)
	if err != nil {
		return err
	}
	if v.Password != t.target.password {
		return fmt.Errorf("password authentication failed for user %s", v.User)
	}
	return nil
}

func (t *toySubject) Check(context.Context, *World) error { return nil }

func newToy() Subject    { return &toySubject{} }
func newBroken() Subject { return &toySubject{brokenSet: true} }

func TestToyActionLiteralsPrintAsGo(t *testing.T) {
	seq := []Action{
		{Kind: Kill, Fresh: true, N: 4, Phase: rotation.After},
		{Kind: Concurrent, N: 2, A: Side{Secret: 1, Fresh: true}, B: Side{Step: rotation.StepSet}},
		{Kind: Unstick, Mode: ModeDiscard},
	}
	want := `[]explore.Action{
	{Kind: explore.Kill, Fresh: true, N: 4, Phase: rotation.After},
	{Kind: explore.Concurrent, N: 2, A: explore.Side{Secret: 1, Fresh: true}, B: explore.Side{Step: rotation.StepSet}},
	{Kind: explore.Unstick, Mode: "discard"},
}`
	if got := Literal(seq); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
