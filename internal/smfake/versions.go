package smfake

// The model: secrets, their versions and staging labels, and the rules for
// how labels move and versions are kept.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

type secret struct {
	arn, name       string
	description     *string
	kmsKeyID        *string
	tags            []types.Tag
	versions        map[string]*version
	order           []string // version ids in creation order
	rotationEnabled bool
	lambdaARN       *string
	rules           *types.RotationRulesType
	created         time.Time
	lastChanged     time.Time
	lastRotated     *time.Time
	deletion        *time.Time // set while scheduled for deletion
}

type version struct {
	id       string
	str      *string
	bin      []byte
	hasValue bool
	stages   []string
	created  time.Time
}

func (v *version) has(label string) bool {
	for _, s := range v.stages {
		if s == label {
			return true
		}
	}
	return false
}

func (v *version) remove(label string) {
	out := v.stages[:0]
	for _, s := range v.stages {
		if s != label {
			out = append(out, s)
		}
	}
	v.stages = out
}

func (v *version) add(label string) {
	if !v.has(label) {
		v.stages = append(v.stages, label)
	}
}

func (v *version) sameValue(str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) || (v.bin == nil) != (bin == nil) {
		return false
	}
	if str != nil && *v.str != *str {
		return false
	}
	return bytes.Equal(v.bin, bin)
}

// holder returns the version carrying label, or nil.
func (s *secret) holder(label string) *version {
	for _, id := range s.order {
		if v := s.versions[id]; v.has(label) {
			return v
		}
	}
	return nil
}

// attach moves label to v (a label is on at most one version). Moving
// AWSCURRENT moves AWSPREVIOUS to the version that held AWSCURRENT.
func (s *secret) attach(label string, v *version) {
	old := s.holder(label)
	if old == v {
		return
	}
	if old != nil {
		old.remove(label)
	}
	v.add(label)
	if label == StageCurrent && old != nil {
		if p := s.holder(StagePrevious); p != nil {
			p.remove(StagePrevious)
		}
		old.add(StagePrevious)
	}
}

func (s *secret) labelCount() int {
	n := 0
	for _, v := range s.versions {
		n += len(v.stages)
	}
	return n
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func token(in *string) (string, error) {
	if in == nil || *in == "" {
		return newToken(), nil
	}
	if n := len(*in); n < 32 || n > 64 {
		return "", errInvalidParam("ClientRequestToken must be 32-64 characters long.")
	}
	return *in, nil
}

func suffix() string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

func cloneRules(r *types.RotationRulesType) *types.RotationRulesType {
	if r == nil {
		return nil
	}
	c := types.RotationRulesType{
		Duration:           cloneString(r.Duration),
		ScheduleExpression: cloneString(r.ScheduleExpression),
	}
	if r.AutomaticallyAfterDays != nil {
		c.AutomaticallyAfterDays = aws.Int64(*r.AutomaticallyAfterDays)
	}
	return &c
}

func validLabel(label string) error {
	if label == "" || len(label) > 256 {
		return errInvalidParam("A staging label must be 1-256 characters long.")
	}
	return nil
}

func validateValue(str *string, bin []byte) error {
	if str != nil && bin != nil {
		return errInvalidParam("You can't specify both SecretString and SecretBinary.")
	}
	return nil
}

// newVersion adds a version, pruning deprecated versions older than 24 hours
// when the secret is at MaxVersions. Caller holds f.mu.
func (f *Fake) newVersion(s *secret, id string, str *string, bin []byte) (*version, error) {
	now := f.now()
	if len(s.versions) >= MaxVersions {
		keep := s.order[:0:0]
		for _, vid := range s.order {
			v := s.versions[vid]
			if len(s.versions) >= MaxVersions && len(v.stages) == 0 && now.Sub(v.created) > 24*time.Hour {
				delete(s.versions, vid)
				continue
			}
			keep = append(keep, vid)
		}
		s.order = keep
		if len(s.versions) >= MaxVersions {
			return nil, errLimit("You can't create more than %d versions of a secret within 24 hours.", MaxVersions)
		}
	}
	v := &version{id: id, created: now}
	if str != nil || bin != nil {
		v.str, v.bin, v.hasValue = cloneString(str), cloneBytes(bin), true
	}
	s.versions[id] = v
	s.order = append(s.order, id)
	return v, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
