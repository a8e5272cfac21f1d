package rotation

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// store is the Store a strategy gets for one step.
type store struct{ r *run }

func (r *run) store() Store { return store{r} }

func (s store) Previous(ctx context.Context) (*Version, error) {
	if s.r.previous == "" {
		return nil, nil
	}
	v, err := s.r.e.readVersion(ctx, s.r.arn, s.r.previous, StagePrevious)
	if v != nil {
		s.r.red.AddValue(v.Value)
	}
	return v, err
}

func (s store) GetSecret(ctx context.Context, secretID, versionID, stage string) (*Version, error) {
	if versionID == "" && stage == "" {
		stage = StageCurrent
	}
	v, err := s.r.e.readVersion(ctx, secretID, versionID, stage)
	if v != nil {
		s.r.red.AddValue(v.Value)
	}
	return v, err
}

func (s store) PutSecret(ctx context.Context, secretID, token string, value []byte) error {
	s.r.red.AddValue(value)
	err := Call(ctx, "secretsmanager:PutSecretValue", func(ctx context.Context) error {
		_, err := s.r.e.cfg.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId:           aws.String(secretID),
			ClientRequestToken: aws.String(token),
			SecretString:       aws.String(string(value)),
		})
		return err
	})
	if isAPIError(err, "ResourceExistsException") {
		s.r.e.cache.forget(secretID, token)
		stored, rerr := s.r.e.readVersion(ctx, secretID, token, "")
		if rerr != nil {
			return rerr
		}
		if stored != nil && string(stored.Value) == string(value) {
			return nil
		}
		return newError(ClassState, "", "PutSecretValue", "version "+token+" of secret "+secretID+" already holds a different value", err)
	}
	if err != nil {
		return classifyExternal("PutSecretValue", err)
	}
	return nil
}

// maxVersionPages bounds how many ListSecretVersionIds pages Versions reads
// (the service keeps about 100 versions; a page holds up to 100).
const maxVersionPages = 5

func (s store) Versions(ctx context.Context, max int) ([]*Version, error) {
	if max <= 0 {
		max = DefaultVersionLimit
	}
	max = min(max, MaxVersionLimit)
	type entry struct {
		id      string
		stages  []string
		created time.Time
	}
	var all []entry
	seen := map[string]bool{}
	var next *string
	for page := 0; page < maxVersionPages; page++ {
		var out *secretsmanager.ListSecretVersionIdsOutput
		err := Call(ctx, "secretsmanager:ListSecretVersionIds", func(ctx context.Context) error {
			var err error
			out, err = s.r.e.cfg.Secrets.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{
				SecretId:          aws.String(s.r.arn),
				IncludeDeprecated: aws.Bool(true),
				MaxResults:        aws.Int32(100),
				NextToken:         next,
			})
			return err
		})
		if err != nil {
			return nil, classifyExternal("ListSecretVersionIds", err)
		}
		for _, v := range out.Versions {
			id := aws.ToString(v.VersionId)
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			all = append(all, entry{id: id, stages: slices.Clone(v.VersionStages), created: aws.ToTime(v.CreatedDate)})
		}
		if out.NextToken == nil || len(out.Versions) == 0 {
			break
		}
		next = out.NextToken
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].created.Equal(all[j].created) {
			return all[i].created.After(all[j].created)
		}
		return all[i].id > all[j].id
	})
	var vs []*Version
	for _, e := range all {
		if len(vs) >= max {
			break
		}
		v, err := s.r.e.readVersion(ctx, s.r.arn, e.id, "")
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue // the empty placeholder (moto lists it)
		}
		s.r.red.AddValue(v.Value)
		c := *v
		c.Stages, c.Created = e.stages, e.created
		vs = append(vs, &c)
	}
	return vs, nil
}

func (s store) SwapSecret(ctx context.Context, secretID, base, token string, value []byte) error {
	if secretID == s.r.arn || secretID == s.r.ev.SecretID {
		return newError(ClassConfiguration, "", "SwapSecret", "refusing to write the rotated secret itself: its labels are the engine's", nil)
	}
	s.r.red.AddValue(value)
	var stages []string
	err := Call(ctx, "secretsmanager:PutSecretValue", func(ctx context.Context) error {
		out, err := s.r.e.cfg.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId:           aws.String(secretID),
			ClientRequestToken: aws.String(token),
			SecretString:       aws.String(string(value)),
			VersionStages:      []string{StageSwap},
		})
		if err == nil {
			stages = out.VersionStages
		}
		return err
	})
	if isAPIError(err, "ResourceExistsException") {
		s.r.e.cache.forget(secretID, token)
		stored, rerr := s.r.e.readVersion(ctx, secretID, token, "")
		if rerr != nil {
			return rerr
		}
		if stored == nil || string(stored.Value) != string(value) {
			return newError(ClassState, "", "PutSecretValue", "version "+token+" of secret "+secretID+" already holds a different value", err)
		}
		stages, err = stored.Stages, nil
	}
	if err != nil {
		return classifyExternal("PutSecretValue", err)
	}
	if slices.Contains(stages, StageCurrent) {
		return nil // the secret's first version, or a retried swap that took effect
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(secretID),
		VersionStage:    aws.String(StageCurrent),
		MoveToVersionId: aws.String(token),
	}
	if base != "" {
		in.RemoveFromVersionId = aws.String(base)
	}
	err = Call(ctx, "secretsmanager:UpdateSecretVersionStage", func(ctx context.Context) error {
		_, err := s.r.e.cfg.Secrets.UpdateSecretVersionStage(ctx, in)
		return err
	})
	if err == nil {
		return nil
	}
	if !isAPIError(err, "InvalidParameterException") {
		return classifyExternal("UpdateSecretVersionStage", err)
	}
	// Refused: find out where AWSCURRENT is (the move may also have taken
	// effect on an earlier attempt whose answer was lost).
	var d *secretsmanager.DescribeSecretOutput
	derr := Call(ctx, "secretsmanager:DescribeSecret", func(ctx context.Context) error {
		var err error
		d, err = s.r.e.cfg.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
		return err
	})
	if derr != nil {
		return classifyExternal("DescribeSecret", derr)
	}
	holder := ""
	for id, st := range d.VersionIdsToStages {
		if slices.Contains(st, StageCurrent) {
			holder = id
		}
	}
	switch {
	case holder == token:
		return nil
	case holder != base:
		e := newError(ClassState, "", "UpdateSecretVersionStage", "AWSCURRENT of secret "+secretID+" moved from version "+base+" to "+holder+" since it was read (a concurrent writer); read it again, merge and write again", ErrSecretMoved)
		e.Retryable = true
		return e
	}
	return classifyExternal("UpdateSecretVersionStage", err)
}
