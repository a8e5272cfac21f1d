package smfake

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var _ rotation.SecretsAPI = (*Fake)(nil)

// Tokens (version ids) used by the rows; 36 characters like the SDK's.
const (
	tA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	tB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	tC = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
	tD = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
)

// env is what a row runs against: one backend and a secret name no other
// row uses.
type env struct {
	ctx    context.Context
	api    API
	lambda string // a RotationLambdaARN the backend accepts
	name   string
}

// row is one rule of the real service. run returns nil when the backend
// follows the rule. For rows moto is known to get wrong, motoWrong says how,
// run must fail on moto, and moto must return nil: it pins moto's actual
// (wrong) behaviour so that a fixed moto is noticed.
type row struct {
	name      string
	run       func(e *env) error
	motoWrong string
	moto      func(e *env) error
}

var seq atomic.Int64

func (e *env) fresh(suffix string) *env {
	c := *e
	c.name = fmt.Sprintf("conf-%s-%d-%d", suffix, time.Now().UnixNano()%1e9, seq.Add(1))
	return &c
}

// --- helpers ----------------------------------------------------------------

func isErr[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func (e *env) create(tok, value string) error {
	in := &secretsmanager.CreateSecretInput{Name: aws.String(e.name), ClientRequestToken: aws.String(tok)}
	if value != "" {
		in.SecretString = aws.String(value)
	}
	_, err := e.api.CreateSecret(e.ctx, in)
	return err
}

func (e *env) put(tok, value string, stages ...string) error {
	_, err := e.api.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(e.name), ClientRequestToken: aws.String(tok),
		SecretString: aws.String(value), VersionStages: stages,
	})
	return err
}

func (e *env) get(vid, stage string) (string, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.name)}
	if vid != "" {
		in.VersionId = aws.String(vid)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := e.api.GetSecretValue(e.ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func (e *env) wantValue(vid, stage, want string) error {
	got, err := e.get(vid, stage)
	if err != nil {
		return fmt.Errorf("GetSecretValue(%q,%q): %w", vid, stage, err)
	}
	if got != want {
		return fmt.Errorf("GetSecretValue(%q,%q) = %q, want %q", vid, stage, got, want)
	}
	return nil
}

func (e *env) rotate(tok string) error {
	in := &secretsmanager.RotateSecretInput{SecretId: aws.String(e.name), RotationLambdaARN: aws.String(e.lambda)}
	if tok != "" {
		in.ClientRequestToken = aws.String(tok)
	}
	_, err := e.api.RotateSecret(e.ctx, in)
	return err
}

func (e *env) move(label, to, from string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(e.name), VersionStage: aws.String(label)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := e.api.UpdateSecretVersionStage(e.ctx, in)
	return err
}

// wantListed checks which versions ListSecretVersionIds returns (in any order).
func (e *env) wantListed(deprecated bool, ids ...string) error {
	out, err := e.api.ListSecretVersionIds(e.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(e.name), IncludeDeprecated: aws.Bool(deprecated)})
	if err != nil {
		return err
	}
	var got []string
	for _, v := range out.Versions {
		got = append(got, aws.ToString(v.VersionId))
	}
	sort.Strings(got)
	want := append([]string(nil), ids...)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("ListSecretVersionIds(IncludeDeprecated=%v) = %v, want %v", deprecated, got, want)
	}
	return nil
}

func (e *env) describe() (*secretsmanager.DescribeSecretOutput, error) {
	return e.api.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.name)})
}

// stages returns VersionIdsToStages with sorted labels, versions without
// labels left out (moto lists them with an empty list; a row about that
// looks at the raw map).
func (e *env) stages() (map[string][]string, error) {
	d, err := e.describe()
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for id, st := range d.VersionIdsToStages {
		if len(st) == 0 {
			continue
		}
		s := append([]string(nil), st...)
		sort.Strings(s)
		m[id] = s
	}
	return m, nil
}

type stageMap = map[string][]string

func (e *env) wantStages(want stageMap) error {
	got, err := e.stages()
	if err != nil {
		return err
	}
	for _, st := range want {
		sort.Strings(st)
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("stages %v, want %v", got, want)
	}
	return nil
}

// all runs checks in order and returns the first failure.
func all(errs ...func() error) error {
	for _, f := range errs {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func expect[T error](what string, f func() error) func() error {
	return func() error {
		err := f()
		if err == nil {
			return fmt.Errorf("%s succeeded, want %T", what, *new(T))
		}
		if !isErr[T](err) {
			return fmt.Errorf("%s: want %T, got %v", what, *new(T), err)
		}
		return nil
	}
}

func step(what string, f func() error) func() error {
	return func() error {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

// rotated sets up: tA current (v1), a rotation started with token tB and its
// pending value v2 put, AWSCURRENT moved to tB. AWSPENDING still on tB.
func (e *env) rotated() error {
	return all(
		step("create", func() error { return e.create(tA, "v1") }),
		step("rotate", func() error { return e.rotate(tB) }),
		step("put pending", func() error { return e.put(tB, "v2", StagePending) }),
		step("finish", func() error { return e.move(StageCurrent, tB, tA) }),
	)
}

// --- the table ----------------------------------------------------------------

var rows = []row{
	{
		name: "CreateSecret_with_a_value_labels_the_first_version_AWSCURRENT",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}}) },
				func() error { return e.wantValue("", "", "v1") },
				func() error { return e.wantValue("", StageCurrent, "v1") },
			)
		},
	},
	{
		name: "CreateSecret_with_an_existing_name_is_ResourceExists",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				expect[*types.ResourceExistsException]("second create", func() error { return e.create(tB, "v2") }),
			)
		},
	},
	{
		name: "unknown_secret_is_ResourceNotFound",
		run: func(e *env) error {
			return expect[*types.ResourceNotFoundException]("get", func() error { _, err := e.get("", ""); return err })()
		},
	},
	{
		name: "AWSPREVIOUS_absent_is_ResourceNotFound",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				expect[*types.ResourceNotFoundException]("get AWSPREVIOUS", func() error { _, err := e.get("", StagePrevious); return err }),
			)
		},
	},
	{
		name: "PutSecretValue_without_stages_moves_AWSCURRENT_and_AWSPREVIOUS_follows",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2") }),
				func() error { return e.wantStages(stageMap{tA: {StagePrevious}, tB: {StageCurrent}}) },
				func() error { return e.wantValue("", StageCurrent, "v2") },
				step("put C", func() error { return e.put(tC, "v3") }),
				func() error { return e.wantStages(stageMap{tB: {StagePrevious}, tC: {StageCurrent}}) },
				func() error { return e.wantValue("", StagePrevious, "v2") },
			)
		},
	},
	{
		name: "PutSecretValue_with_AWSPENDING_moves_only_AWSPENDING",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2", StagePending) }),
				step("put C", func() error { return e.put(tC, "v3", StagePending) }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tC: {StagePending}}) },
				func() error { return e.wantValue("", StageCurrent, "v1") },
			)
		},
	},
	{
		name: "first_version_of_an_empty_secret_gets_AWSCURRENT_even_when_put_as_AWSPENDING",
		run: func(e *env) error {
			return all(
				step("create empty", func() error { return e.create(tA, "") }),
				step("put", func() error { return e.put(tB, "v1", StagePending) }),
				func() error { return e.wantStages(stageMap{tB: {StageCurrent, StagePending}}) },
			)
		},
	},
	{
		name: "PutSecretValue_identical_value_under_an_existing_token_succeeds_and_changes_nothing",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2", StagePending) }),
				step("put B again", func() error { return e.put(tB, "v2", StagePending) }),
				step("put A again (CreateSecret's token)", func() error { return e.put(tA, "v1") }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}) },
			)
		},
	},
	{
		name: "PutSecretValue_different_value_under_the_AWSCURRENT_token_is_ResourceExists",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				expect[*types.ResourceExistsException]("put A with another value", func() error { return e.put(tA, "v1-changed") }),
				func() error { return e.wantValue(tA, "", "v1") },
			)
		},
	},
	{
		name: "PutSecretValue_different_value_under_an_existing_AWSPENDING_token_is_ResourceExists",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2", StagePending) }),
				expect[*types.ResourceExistsException]("put B with another value", func() error { return e.put(tB, "v2-other", StagePending) }),
				func() error { return e.wantValue(tB, StagePending, "v2") },
			)
		},
		motoWrong: "moto accepts a different value under an existing AWSPENDING token and overwrites the version",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2", StagePending) }),
				step("put B with another value (moto accepts)", func() error { return e.put(tB, "v2-other", StagePending) }),
				func() error { return e.wantValue(tB, StagePending, "v2-other") },
			)
		},
	},
	{
		name: "RotateSecret_creates_an_empty_AWSPENDING_placeholder_whose_id_is_the_token",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate", func() error { return e.rotate(tB) }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}) },
				expect[*types.ResourceNotFoundException]("get placeholder", func() error { _, err := e.get(tB, StagePending); return err }),
				func() error { return e.wantValue("", StageCurrent, "v1") },
			)
		},
	},
	{
		name: "the_empty_placeholder_read_by_stage_alone_is_ResourceNotFound",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate", func() error { return e.rotate(tB) }),
				expect[*types.ResourceNotFoundException]("get AWSPENDING", func() error { _, err := e.get("", StagePending); return err }),
				expect[*types.ResourceNotFoundException]("get by id", func() error { _, err := e.get(tB, ""); return err }),
			)
		},
	},
	{
		name: "the_first_PutSecretValue_fills_the_placeholder_and_a_different_value_after_that_is_ResourceExists",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate", func() error { return e.rotate(tB) }),
				step("fill", func() error { return e.put(tB, "v2", StagePending) }),
				func() error { return e.wantValue(tB, StagePending, "v2") },
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}) },
				step("same value again", func() error { return e.put(tB, "v2", StagePending) }),
				expect[*types.ResourceExistsException]("different value", func() error { return e.put(tB, "v3", StagePending) }),
				func() error { return e.wantValue(tB, StagePending, "v2") },
			)
		},
		motoWrong: "moto lets a later PutSecretValue overwrite the filled AWSPENDING version",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate", func() error { return e.rotate(tB) }),
				step("fill", func() error { return e.put(tB, "v2", StagePending) }),
				step("different value (moto accepts)", func() error { return e.put(tB, "v3", StagePending) }),
				func() error { return e.wantValue(tB, StagePending, "v3") },
			)
		},
	},
	{
		name: "GetSecretValue_with_VersionId_and_a_VersionStage_it_does_not_carry_fails",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				expect[*types.InvalidRequestException]("get A as AWSPENDING", func() error { _, err := e.get(tA, StagePending); return err }),
			)
		},
	},
	{
		name: "UpdateSecretVersionStage_AWSCURRENT_moves_AWSPREVIOUS_to_the_old_current",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2") }),
				step("put C pending", func() error { return e.put(tC, "v3", StagePending) }),
				step("move current to C", func() error { return e.move(StageCurrent, tC, tB) }),
				func() error {
					return e.wantStages(stageMap{tB: {StagePrevious}, tC: {StageCurrent, StagePending}})
				},
				func() error { return e.wantValue("", StageCurrent, "v3") },
				func() error { return e.wantValue("", StagePrevious, "v2") },
			)
		},
	},
	{
		name: "GetSecretValue_without_stage_returns_the_new_AWSCURRENT_after_UpdateSecretVersionStage",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B pending", func() error { return e.put(tB, "v2", StagePending) }),
				step("move current to B", func() error { return e.move(StageCurrent, tB, tA) }),
				func() error { return e.wantValue("", "", "v2") },
			)
		},
		motoWrong: "after UpdateSecretVersionStage moves AWSCURRENT, moto's GetSecretValue without stage or version still returns the old version",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B pending", func() error { return e.put(tB, "v2", StagePending) }),
				step("move current to B", func() error { return e.move(StageCurrent, tB, tA) }),
				func() error { return e.wantValue("", StageCurrent, "v2") },
				func() error { return e.wantValue("", "", "v1") },
			)
		},
	},
	{
		name: "GetSecretValue_without_stage_returns_AWSCURRENT_while_a_rotation_is_pending",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate B", func() error { return e.rotate(tB) }),
				func() error { return e.wantValue("", "", "v1") },
			)
		},
		motoWrong: "after RotateSecret with a Lambda, moto's GetSecretValue without stage or version reads the empty placeholder (ResourceNotFound) instead of AWSCURRENT",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate B", func() error { return e.rotate(tB) }),
				func() error { return e.wantValue("", StageCurrent, "v1") },
				expect[*types.ResourceNotFoundException]("get without stage", func() error { _, err := e.get("", ""); return err }),
			)
		},
	},
	{
		name: "UpdateSecretVersionStage_AWSCURRENT_without_RemoveFromVersionId_is_InvalidParameter",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B pending", func() error { return e.put(tB, "v2", StagePending) }),
				expect[*types.InvalidParameterException]("move without remove-from", func() error { return e.move(StageCurrent, tB, "") }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}) },
			)
		},
	},
	{
		name: "UpdateSecretVersionStage_with_a_RemoveFromVersionId_that_does_not_carry_the_label_is_InvalidParameter",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B pending", func() error { return e.put(tB, "v2", StagePending) }),
				expect[*types.InvalidParameterException]("move with wrong remove-from", func() error { return e.move(StageCurrent, tB, tB) }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}) },
			)
		},
	},
	{
		name: "UpdateSecretVersionStage_any_label_on_another_version_needs_RemoveFromVersionId",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B pending", func() error { return e.put(tB, "v2", StagePending) }),
				expect[*types.InvalidParameterException]("move AWSPENDING to A without remove-from", func() error { return e.move(StagePending, tA, "") }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}) },
			)
		},
		motoWrong: "moto attaches the label to a second version when RemoveFromVersionId is missing (a label on two versions)",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B pending", func() error { return e.put(tB, "v2", StagePending) }),
				step("move AWSPENDING to A without remove-from (moto accepts)", func() error { return e.move(StagePending, tA, "") }),
				func() error {
					return e.wantStages(stageMap{tA: {StageCurrent, StagePending}, tB: {StagePending}})
				},
			)
		},
	},
	{
		name: "UpdateSecretVersionStage_onto_the_version_that_already_carries_the_label_succeeds",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("move AWSCURRENT onto A", func() error { return e.move(StageCurrent, tA, "") }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}}) },
			)
		},
		motoWrong: "moto demands RemoveFromVersionId for AWSCURRENT even when the label is already on MoveToVersionId",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				expect[*types.InvalidParameterException]("move AWSCURRENT onto A (moto refuses)", func() error { return e.move(StageCurrent, tA, "") }),
			)
		},
	},
	{
		name: "UpdateSecretVersionStage_RemoveFromVersionId_takes_AWSPENDING_off",
		run: func(e *env) error {
			return all(
				func() error { return e.rotated() },
				func() error {
					return e.wantStages(stageMap{tA: {StagePrevious}, tB: {StageCurrent, StagePending}})
				},
				step("remove pending", func() error { return e.move(StagePending, "", tB) }),
				func() error { return e.wantStages(stageMap{tA: {StagePrevious}, tB: {StageCurrent}}) },
			)
		},
	},
	{
		name: "RotateSecret_is_refused_while_AWSPENDING_is_on_a_version_other_than_AWSCURRENT",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate B", func() error { return e.rotate(tB) }),
				expect[*types.InvalidRequestException]("rotate C", func() error { return e.rotate(tC) }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}) },
			)
		},
		motoWrong: "moto starts a new rotation although the previous one's AWSPENDING is on another version (its check is inverted)",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate B", func() error { return e.rotate(tB) }),
				step("rotate C (moto accepts)", func() error { return e.rotate(tC) }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tC: {StagePending}}) },
			)
		},
	},
	{
		name: "RotateSecret_is_allowed_when_AWSPENDING_is_on_the_AWSCURRENT_version",
		run: func(e *env) error {
			return all(
				func() error { return e.rotated() },
				step("rotate C", func() error { return e.rotate(tC) }),
				func() error {
					return e.wantStages(stageMap{tA: {StagePrevious}, tB: {StageCurrent}, tC: {StagePending}})
				},
			)
		},
		motoWrong: "moto refuses RotateSecret when AWSPENDING is left on the AWSCURRENT version (the real service allows it)",
		moto: func(e *env) error {
			return all(
				func() error { return e.rotated() },
				expect[*types.InvalidRequestException]("rotate C (moto refuses)", func() error { return e.rotate(tC) }),
			)
		},
	},
	{
		name: "RotateSecret_after_a_completed_rotation_starts_the_next_one",
		run: func(e *env) error {
			return all(
				func() error { return e.rotated() },
				step("remove pending", func() error { return e.move(StagePending, "", tB) }),
				step("rotate C", func() error { return e.rotate(tC) }),
				func() error {
					return e.wantStages(stageMap{tA: {StagePrevious}, tB: {StageCurrent}, tC: {StagePending}})
				},
				step("fill C", func() error { return e.put(tC, "v3", StagePending) }),
				step("finish C", func() error { return e.move(StageCurrent, tC, tB) }),
				step("remove pending", func() error { return e.move(StagePending, "", tC) }),
				func() error { return e.wantStages(stageMap{tB: {StagePrevious}, tC: {StageCurrent}}) },
				func() error { return e.wantValue("", StageCurrent, "v3") },
				func() error { return e.wantValue("", StagePrevious, "v2") },
			)
		},
	},
	{
		name: "RotateSecret_without_a_Lambda_is_InvalidRequest",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				expect[*types.InvalidRequestException]("rotate without Lambda", func() error {
					_, err := e.api.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(e.name), ClientRequestToken: aws.String(tB)})
					return err
				}),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}}) },
			)
		},
		motoWrong: "without a Lambda ARN moto's RotateSecret moves AWSCURRENT to a new version at once and runs no step",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate without Lambda (moto accepts)", func() error {
					_, err := e.api.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(e.name), ClientRequestToken: aws.String(tB)})
					return err
				}),
				func() error {
					st, err := e.stages()
					if err != nil {
						return err
					}
					if !reflect.DeepEqual(st[tB], []string{StageCurrent}) {
						return fmt.Errorf("stages %v: want AWSCURRENT moved to %s", st, tB)
					}
					return nil
				},
			)
		},
	},
	{
		name: "DescribeSecret_reports_rotation_enabled_the_Lambda_and_AutomaticallyAfterDays",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate", func() error {
					_, err := e.api.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{
						SecretId: aws.String(e.name), ClientRequestToken: aws.String(tB),
						RotationLambdaARN: aws.String(e.lambda),
						RotationRules:     &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
					})
					return err
				}),
				func() error {
					d, err := e.describe()
					if err != nil {
						return err
					}
					if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != e.lambda ||
						d.RotationRules == nil || aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 30 {
						return fmt.Errorf("enabled=%v lambda=%q rules=%+v", aws.ToBool(d.RotationEnabled), aws.ToString(d.RotationLambdaARN), d.RotationRules)
					}
					return nil
				},
			)
		},
	},
	{
		name: "DescribeSecret_reports_rotation_enabled_with_a_ScheduleExpression",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate", func() error {
					_, err := e.api.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{
						SecretId: aws.String(e.name), ClientRequestToken: aws.String(tB),
						RotationLambdaARN: aws.String(e.lambda),
						RotationRules:     &types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)")},
					})
					return err
				}),
				func() error {
					d, err := e.describe()
					if err != nil {
						return err
					}
					if !aws.ToBool(d.RotationEnabled) || d.RotationRules == nil || aws.ToString(d.RotationRules.ScheduleExpression) != "rate(10 days)" {
						return fmt.Errorf("enabled=%v rules=%+v", aws.ToBool(d.RotationEnabled), d.RotationRules)
					}
					return nil
				},
			)
		},
		motoWrong: "moto enables rotation only for AutomaticallyAfterDays and drops ScheduleExpression",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("rotate", func() error {
					_, err := e.api.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{
						SecretId: aws.String(e.name), ClientRequestToken: aws.String(tB),
						RotationLambdaARN: aws.String(e.lambda),
						RotationRules:     &types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)")},
					})
					return err
				}),
				func() error {
					d, err := e.describe()
					if err != nil {
						return err
					}
					if aws.ToBool(d.RotationEnabled) && d.RotationRules != nil && aws.ToString(d.RotationRules.ScheduleExpression) != "" {
						return errors.New("moto now reports the schedule expression: fixed?")
					}
					return nil
				},
			)
		},
	},
	{
		name: "DescribeSecret_omits_deprecated_versions_and_lists_the_placeholder",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2") }),
				step("put C", func() error { return e.put(tC, "v3") }), // A loses AWSPREVIOUS: deprecated
				step("rotate D", func() error { return e.rotate(tD) }),
				func() error {
					d, err := e.describe()
					if err != nil {
						return err
					}
					if _, listed := d.VersionIdsToStages[tA]; listed {
						return fmt.Errorf("deprecated version listed: %v", d.VersionIdsToStages)
					}
					if !reflect.DeepEqual(d.VersionIdsToStages[tD], []string{StagePending}) {
						return fmt.Errorf("placeholder not listed as AWSPENDING: %v", d.VersionIdsToStages)
					}
					return nil
				},
			)
		},
		motoWrong: "moto lists deprecated (unlabelled) versions in VersionIdsToStages with an empty list",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2") }),
				step("put C", func() error { return e.put(tC, "v3") }),
				func() error {
					d, err := e.describe()
					if err != nil {
						return err
					}
					if st, listed := d.VersionIdsToStages[tA]; !listed || len(st) != 0 {
						return fmt.Errorf("moto no longer lists the deprecated version with no labels: %v", d.VersionIdsToStages)
					}
					return nil
				},
			)
		},
	},
	{
		name: "ListSecretVersionIds_lists_versions_with_a_value_and_unlabelled_ones_only_with_IncludeDeprecated",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2") }),
				step("put C", func() error { return e.put(tC, "v3") }), // A loses AWSPREVIOUS: deprecated
				step("rotate D", func() error { return e.rotate(tD) }), // the empty placeholder
				func() error { return e.wantListed(false, tB, tC) },
				func() error { return e.wantListed(true, tA, tB, tC) },
			)
		},
		motoWrong: "moto ignores IncludeDeprecated and lists every version, the empty placeholder included",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2") }),
				step("put C", func() error { return e.put(tC, "v3") }),
				step("rotate D", func() error { return e.rotate(tD) }),
				func() error { return e.wantListed(false, tA, tB, tC, tD) },
			)
		},
	},
	{
		name: "ListSecretVersionIds_pages_with_MaxResults_and_NextToken",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2") }),
				step("put C", func() error { return e.put(tC, "v3") }),
				func() error {
					seen := map[string]bool{}
					var next *string
					for pages := 0; ; pages++ {
						if pages > 3 {
							return errors.New("more than three pages of one version each")
						}
						out, err := e.api.ListSecretVersionIds(e.ctx, &secretsmanager.ListSecretVersionIdsInput{
							SecretId: aws.String(e.name), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(1), NextToken: next,
						})
						if err != nil {
							return err
						}
						if len(out.Versions) > 1 {
							return fmt.Errorf("MaxResults 1 returned %d versions", len(out.Versions))
						}
						for _, v := range out.Versions {
							seen[aws.ToString(v.VersionId)] = true
						}
						if next = out.NextToken; next == nil {
							break
						}
					}
					if !reflect.DeepEqual(seen, map[string]bool{tA: true, tB: true, tC: true}) {
						return fmt.Errorf("pages listed %v", seen)
					}
					return nil
				},
			)
		}, motoWrong: "moto ignores MaxResults and returns every version in the first page",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B", func() error { return e.put(tB, "v2") }),
				step("put C", func() error { return e.put(tC, "v3") }),
				func() error {
					out, err := e.api.ListSecretVersionIds(e.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(e.name), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(1)})
					if err != nil {
						return err
					}
					if len(out.Versions) != 3 {
						return fmt.Errorf("moto now honours MaxResults (%d versions)", len(out.Versions))
					}
					return nil
				},
			)
		},
	},
	{
		name: "UpdateSecretVersionStage_AWSCURRENT_with_RemoveFromVersionId_is_a_compare_and_swap",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				// Two writers read A, each puts its value under a private label.
				step("put B staged", func() error { return e.put(tB, "v2", "WRITER_B") }),
				step("put C staged", func() error { return e.put(tC, "v3", "WRITER_C") }),
				func() error { return e.wantStages(stageMap{tA: {StageCurrent}, tB: {"WRITER_B"}, tC: {"WRITER_C"}}) },
				step("B wins: move AWSCURRENT from A", func() error { return e.move(StageCurrent, tB, tA) }),
				expect[*types.InvalidParameterException]("C loses: AWSCURRENT is no longer on A", func() error { return e.move(StageCurrent, tC, tA) }),
				func() error {
					return e.wantStages(stageMap{tA: {StagePrevious}, tB: {StageCurrent, "WRITER_B"}, tC: {"WRITER_C"}})
				},
			)
		},
	},
	{
		name: "PutSecretValue_after_UpdateSecretVersionStage_moves_AWSCURRENT_from_the_version_that_carries_it",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B staged", func() error { return e.put(tB, "v2", "WRITER_B") }),
				step("move current to B", func() error { return e.move(StageCurrent, tB, tA) }),
				step("put C", func() error { return e.put(tC, "v3") }),
				func() error {
					return e.wantStages(stageMap{tB: {StagePrevious, "WRITER_B"}, tC: {StageCurrent}})
				},
			)
		},
		motoWrong: "after UpdateSecretVersionStage moved AWSCURRENT, moto's PutSecretValue takes it off the old holder only, leaving AWSCURRENT on two versions",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("put B staged", func() error { return e.put(tB, "v2", "WRITER_B") }),
				step("move current to B", func() error { return e.move(StageCurrent, tB, tA) }),
				step("put C", func() error { return e.put(tC, "v3") }),
				func() error {
					st, err := e.stages()
					if err != nil {
						return err
					}
					if !slices.Contains(st[tB], StageCurrent) || !slices.Contains(st[tC], StageCurrent) {
						return fmt.Errorf("moto no longer leaves AWSCURRENT on two versions: %v", st)
					}
					return nil
				},
			)
		},
	},
	{
		name: "a_secret_holds_at_most_20_staging_labels",
		run: func(e *env) error {
			fns := []func() error{step("create", func() error { return e.create(tA, "v1") })}
			for i := 1; i < MaxLabelsPerSecret; i++ { // AWSCURRENT + 19 custom labels = 20
				i := i
				fns = append(fns, step(fmt.Sprintf("put label %d", i), func() error {
					return e.put(fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), fmt.Sprint("v", i), fmt.Sprint("L", i))
				}))
			}
			fns = append(fns, expect[*types.LimitExceededException]("21st label", func() error {
				return e.put("99999999-0000-4000-8000-000000000000", "v21", "L21")
			}))
			return all(fns...)
		},
		motoWrong: "moto does not limit the number of staging labels",
		moto: func(e *env) error {
			fns := []func() error{step("create", func() error { return e.create(tA, "v1") })}
			for i := 1; i <= MaxLabelsPerSecret; i++ {
				i := i
				fns = append(fns, step(fmt.Sprintf("put label %d", i), func() error {
					return e.put(fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), fmt.Sprint("v", i), fmt.Sprint("L", i))
				}))
			}
			return all(fns...)
		},
	},
	{
		name: "ClientRequestToken_must_be_32_to_64_characters",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				expect[*types.InvalidParameterException]("short token", func() error { return e.put("short-token", "v2") }),
			)
		},
	},
	{
		name: "SecretId_may_be_the_ARN",
		run: func(e *env) error {
			var arn string
			return all(
				step("create", func() error {
					out, err := e.api.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(e.name), SecretString: aws.String("v1")})
					if err == nil {
						arn = aws.ToString(out.ARN)
					}
					return err
				}),
				func() error {
					out, err := e.api.GetSecretValue(e.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
					if err != nil {
						return err
					}
					if aws.ToString(out.SecretString) != "v1" || aws.ToString(out.Name) != e.name {
						return fmt.Errorf("got %q for %q", aws.ToString(out.SecretString), aws.ToString(out.Name))
					}
					return nil
				},
			)
		},
	},
	{
		name: "TagResource_replaces_by_key_and_UntagResource_removes",
		run: func(e *env) error {
			tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("tag", func() error {
					_, err := e.api.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(e.name), Tags: []types.Tag{tag("a", "1"), tag("b", "2")}})
					return err
				}),
				step("retag", func() error {
					_, err := e.api.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(e.name), Tags: []types.Tag{tag("a", "3")}})
					return err
				}),
				step("untag", func() error {
					_, err := e.api.UntagResource(e.ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(e.name), TagKeys: []string{"b", "absent"}})
					return err
				}),
				func() error {
					d, err := e.describe()
					if err != nil {
						return err
					}
					got := map[string]string{}
					for _, t := range d.Tags {
						got[aws.ToString(t.Key)] = aws.ToString(t.Value)
					}
					if !reflect.DeepEqual(got, map[string]string{"a": "3"}) {
						return fmt.Errorf("tags %v, want a=3", got)
					}
					return nil
				},
			)
		},
	},
	{
		name: "DeleteSecret_schedules_deletion_and_blocks_reads",
		run: func(e *env) error {
			del := func(days int64) error {
				_, err := e.api.DeleteSecret(e.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(e.name), RecoveryWindowInDays: aws.Int64(days)})
				return err
			}
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				expect[*types.InvalidParameterException]("window of 3 days", func() error { return del(3) }),
				step("delete", func() error { return del(7) }),
				func() error {
					d, err := e.describe()
					if err != nil {
						return err
					}
					if d.DeletedDate == nil {
						return errors.New("DescribeSecret shows no DeletedDate")
					}
					return nil
				},
				expect[*types.InvalidRequestException]("get", func() error { _, err := e.get("", ""); return err }),
				expect[*types.InvalidRequestException]("delete again", func() error { return del(7) }),
			)
		},
	},
	{
		name: "PutSecretValue_on_a_secret_scheduled_for_deletion_is_InvalidRequest",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("delete", func() error {
					_, err := e.api.DeleteSecret(e.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(e.name)})
					return err
				}),
				expect[*types.InvalidRequestException]("put", func() error { return e.put(tB, "v2") }),
			)
		},
		motoWrong: "moto accepts PutSecretValue on a secret scheduled for deletion",
		moto: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("delete", func() error {
					_, err := e.api.DeleteSecret(e.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(e.name)})
					return err
				}),
				step("put (moto accepts)", func() error { return e.put(tB, "v2") }),
			)
		},
	},
	{
		name: "ForceDeleteWithoutRecovery_removes_the_secret_at_once",
		run: func(e *env) error {
			return all(
				step("create", func() error { return e.create(tA, "v1") }),
				step("delete", func() error {
					_, err := e.api.DeleteSecret(e.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(e.name), ForceDeleteWithoutRecovery: aws.Bool(true)})
					return err
				}),
				expect[*types.ResourceNotFoundException]("describe", func() error { _, err := e.describe(); return err }),
			)
		},
	},
}

// --- runner ----------------------------------------------------------------

func TestConformance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("fake", func(t *testing.T) {
		for _, r := range rows {
			t.Run(r.name, func(t *testing.T) {
				e := (&env{ctx: ctx, api: New(), lambda: "arn:aws:lambda:us-east-1:123456789012:function:fake-rotation"}).fresh("fake")
				if err := r.run(e); err != nil {
					t.Fatalf("the fake breaks the real service's rule: %v", err)
				}
			})
		}
	})

	t.Run("moto", func(t *testing.T) {
		m := testenv.SharedMoto(t)
		cfg, err := m.AWSConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		arn, err := m.RegisterNoopLambda(ctx, "smfake-conformance")
		if err != nil {
			t.Fatal(err)
		}
		base := &env{ctx: ctx, api: secretsmanager.NewFromConfig(cfg), lambda: arn}
		for _, r := range rows {
			t.Run(r.name, func(t *testing.T) {
				err := r.run(base.fresh("moto"))
				if r.motoWrong == "" {
					if err != nil {
						t.Fatalf("moto breaks a rule it used to follow: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatalf("moto now follows the rule (was: %s): drop motoWrong from this row", r.motoWrong)
				}
				if merr := r.moto(base.fresh("motowrong")); merr != nil {
					t.Fatalf("moto's known-wrong behaviour changed (%s): %v", r.motoWrong, merr)
				}
				t.Logf("moto known wrong: %s (rule check: %v)", r.motoWrong, err)
			})
		}
	})
}

// TestConformanceRowsNameTheirMotoDeviation keeps the table honest: a row
// marked wrong on moto pins moto's behaviour, and only then.
func TestConformanceRowsNameTheirMotoDeviation(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.name] {
			t.Errorf("duplicate row %s", r.name)
		}
		seen[r.name] = true
		if (r.motoWrong == "") != (r.moto == nil) {
			t.Errorf("%s: motoWrong and moto must be set together", r.name)
		}
		if strings.ContainsAny(r.name, " /") {
			t.Errorf("%s: row names are test names: no spaces or slashes", r.name)
		}
	}
}
