// Package smfake is an in-memory AWS Secrets Manager for tests that follows
// the real service's rules where moto does not: the empty AWSPENDING
// placeholder made by RotateSecret, PutSecretValue idempotency on the
// ClientRequestToken, how staging labels move (AWSPREVIOUS follows
// AWSCURRENT; RemoveFromVersionId required and checked), the
// "previous rotation isn't complete" check, deprecated versions dropping
// out of DescribeSecret, and which versions ListSecretVersionIds lists (only
// those with a value; unlabelled ones on request; paged by MaxResults).
//
// A *Fake has the same method signatures as *secretsmanager.Client for the
// operations the rotation suite uses, and returns the SDK's own error types
// (github.com/aws/aws-sdk-go-v2/service/secretsmanager/types) wrapped in a
// *smithy.OperationError, so errors.As in callers behaves as against AWS.
// conformance_test.go runs every rule against both the fake and moto.
//
// smfake owns no product logic and never puts a secret value in an error.
package smfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// Staging labels the service itself manages.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Limits the real service enforces (Secrets Manager quotas).
const (
	MaxLabelsPerSecret = 20  // staging labels attached across all versions
	MaxVersions        = 100 // versions kept; deprecated ones older than 24 h are pruned first
)

// API is the part of the Secrets Manager client that both *Fake and
// *secretsmanager.Client provide.
type API interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *secretsmanager.UntagResourceInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error)
	DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
}

var (
	_ API = (*secretsmanager.Client)(nil)
	_ API = (*Fake)(nil)
)

// Fake is an in-memory Secrets Manager. The zero value is not usable; call
// New. All methods are safe for concurrent use.
type Fake struct {
	// Intercept, if set, runs at the start of every API call (outside the
	// fake's lock, so it may call the fake itself) with the operation name,
	// e.g. "PutSecretValue", and the input. A non-nil error is returned as
	// the call's result and the call changes nothing.
	Intercept func(ctx context.Context, op string, in any) error

	mu      sync.Mutex
	region  string
	account string
	now     func() time.Time
	secrets map[string]*secret // by ARN
	calls   map[string]int
}

// Option configures New.
type Option func(*Fake)

// WithClock makes the fake read time from now (version dates, deletion dates,
// the 24-hour pruning rule).
func WithClock(now func() time.Time) Option { return func(f *Fake) { f.now = now } }

// WithAccount sets the region and account used in ARNs (default us-east-1,
// 123456789012, as moto).
func WithAccount(region, account string) Option {
	return func(f *Fake) { f.region, f.account = region, account }
}

// New returns an empty fake.
func New(opts ...Option) *Fake {
	f := &Fake{
		region:  "us-east-1",
		account: "123456789012",
		now:     time.Now,
		secrets: map[string]*secret{},
		calls:   map[string]int{},
	}
	for _, o := range opts {
		o(f)
	}
	return f
}

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

// --- errors -----------------------------------------------------------------

func opErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: op, Err: err}
}

func errNotFound(format string, a ...any) error {
	return &types.ResourceNotFoundException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errInvalidParam(format string, a ...any) error {
	return &types.InvalidParameterException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errInvalidRequest(format string, a ...any) error {
	return &types.InvalidRequestException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errExists(format string, a ...any) error {
	return &types.ResourceExistsException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errLimit(format string, a ...any) error {
	return &types.LimitExceededException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errInvalidNextToken() error {
	return &types.InvalidNextTokenException{Message: aws.String("The NextToken value is invalid.")}
}

func required(op string, fields ...string) error {
	ip := smithy.InvalidParamsError{Context: op + "Input"}
	for _, f := range fields {
		ip.Add(smithy.NewErrParamRequired(f))
	}
	return ip // a value, as the SDK's validators return it
}

func errMarkedDeleted() error {
	return errInvalidRequest("You can't perform this operation on the secret because it was marked for deletion.")
}

// --- plumbing -----------------------------------------------------------------

// serve runs one API call as the service would: it counts the call, honours a
// cancelled context and Intercept, rejects a missing required field the way
// the SDK's validation does, and runs fn under the lock, wrapping its error
// in the operation error the SDK returns.
func serve[In, Out any](f *Fake, ctx context.Context, op string, in *In, present func(*In) bool, fields []string, fn func(*In) (*Out, error)) (*Out, error) {
	if err := f.begin(ctx, op, in); err != nil {
		return nil, err
	}
	if in == nil || !present(in) {
		return nil, opErr(op, required(op, fields...))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out, err := fn(in)
	if err != nil {
		return nil, opErr(op, err)
	}
	return out, nil
}

// begin counts the call, honours a cancelled context and runs Intercept.
func (f *Fake) begin(ctx context.Context, op string, in any) error {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return opErr(op, err)
	}
	if f.Intercept != nil {
		if err := f.Intercept(ctx, op, in); err != nil {
			return err
		}
	}
	return nil
}

// find resolves a SecretId: the full ARN, the name, or the ARN without its
// random six-character suffix. Caller holds f.mu.
func (f *Fake) find(id *string) (*secret, error) {
	if id == nil || *id == "" {
		return nil, errNotFound("Secrets Manager can't find the specified secret.")
	}
	if s, ok := f.secrets[*id]; ok {
		return s, nil
	}
	for _, s := range f.secrets {
		if s.name == *id || (len(s.arn) > 7 && s.arn[:len(s.arn)-7] == *id) {
			return s, nil
		}
	}
	return nil, errNotFound("Secrets Manager can't find the specified secret.")
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

// --- operations -----------------------------------------------------------------

// CreateSecret creates a secret; with a value, its first version carries
// AWSCURRENT. A retry with the same ClientRequestToken and value succeeds.
func (f *Fake) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	return serve(f, ctx, "CreateSecret", in, func(in *secretsmanager.CreateSecretInput) bool { return in.Name != nil && *in.Name != "" }, []string{"Name"}, f.createSecret)
}

func (f *Fake) createSecret(in *secretsmanager.CreateSecretInput) (*secretsmanager.CreateSecretOutput, error) {
	if err := validateValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	tok, err := token(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	for _, s := range f.secrets {
		if s.name != *in.Name {
			continue
		}
		if s.deletion != nil {
			return nil, errInvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		if v, ok := s.versions[tok]; ok && v.hasValue && v.sameValue(in.SecretString, in.SecretBinary) {
			return &secretsmanager.CreateSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(v.id)}, nil
		}
		return nil, errExists("The operation failed because the secret %s already exists.", s.name)
	}
	now := f.now()
	s := &secret{
		arn:         fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", f.region, f.account, *in.Name, suffix()),
		name:        *in.Name,
		description: cloneString(in.Description),
		kmsKeyID:    cloneString(in.KmsKeyId),
		tags:        append([]types.Tag(nil), in.Tags...),
		versions:    map[string]*version{},
		created:     now,
		lastChanged: now,
	}
	out := &secretsmanager.CreateSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}
	if in.SecretString != nil || in.SecretBinary != nil {
		v, err := f.newVersion(s, tok, in.SecretString, in.SecretBinary)
		if err != nil {
			return nil, err
		}
		v.add(StageCurrent)
		out.VersionId = aws.String(tok)
	}
	f.secrets[s.arn] = s
	return out, nil
}

// DescribeSecret reports the secret's metadata, rotation configuration and
// VersionIdsToStages (labelled versions only, the empty placeholder included;
// deprecated versions are left out, as the service does).
func (f *Fake) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return serve(f, ctx, "DescribeSecret", in, func(in *secretsmanager.DescribeSecretInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.describeSecret)
}

func (f *Fake) describeSecret(in *secretsmanager.DescribeSecretInput) (*secretsmanager.DescribeSecretOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	out := &secretsmanager.DescribeSecretOutput{
		ARN:                aws.String(s.arn),
		Name:               aws.String(s.name),
		Description:        cloneString(s.description),
		KmsKeyId:           cloneString(s.kmsKeyID),
		RotationEnabled:    aws.Bool(s.rotationEnabled),
		RotationLambdaARN:  cloneString(s.lambdaARN),
		RotationRules:      cloneRules(s.rules),
		CreatedDate:        aws.Time(s.created),
		LastChangedDate:    aws.Time(s.lastChanged),
		LastRotatedDate:    cloneTime(s.lastRotated),
		DeletedDate:        cloneTime(s.deletion),
		VersionIdsToStages: map[string][]string{},
	}
	if len(s.tags) > 0 {
		out.Tags = append([]types.Tag(nil), s.tags...)
	}
	for id, v := range s.versions {
		if len(v.stages) > 0 {
			out.VersionIdsToStages[id] = append([]string(nil), v.stages...)
		}
	}
	return out, nil
}

// GetSecretValue returns a version's value: by VersionId, by VersionStage, or
// AWSCURRENT when neither is given. With both, the version must carry the
// stage. The empty placeholder has no value: ResourceNotFoundException.
func (f *Fake) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return serve(f, ctx, "GetSecretValue", in, func(in *secretsmanager.GetSecretValueInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.getSecretValue)
}

func (f *Fake) getSecretValue(in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if s.deletion != nil {
		return nil, errMarkedDeleted()
	}
	vid, stage := aws.ToString(in.VersionId), aws.ToString(in.VersionStage)
	var v *version
	if vid != "" {
		v = s.versions[vid]
		if v == nil {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for VersionId: %s", vid)
		}
		if stage != "" && !v.has(stage) {
			return nil, errInvalidRequest("You provided a VersionStage that is not associated to the provided VersionId.")
		}
		if !v.hasValue {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for VersionId: %s", vid)
		}
	} else {
		if stage == "" {
			stage = StageCurrent
		}
		v = s.holder(stage)
		if v == nil || !v.hasValue {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for staging label: %s", stage)
		}
	}
	return &secretsmanager.GetSecretValueOutput{
		ARN:           aws.String(s.arn),
		Name:          aws.String(s.name),
		VersionId:     aws.String(v.id),
		SecretString:  cloneString(v.str),
		SecretBinary:  cloneBytes(v.bin),
		VersionStages: append([]string(nil), v.stages...),
		CreatedDate:   aws.Time(v.created),
	}, nil
}

// PutSecretValue stores a value under ClientRequestToken:
//   - a new token creates a version;
//   - the empty placeholder made by RotateSecret is filled by the first put;
//   - an existing version with the identical value: success, nothing changes;
//   - an existing version with a different value: ResourceExistsException.
//
// The version then gets VersionStages (default AWSCURRENT; the first version
// of a secret always gets AWSCURRENT), each moved from whichever version held
// it; moving AWSCURRENT moves AWSPREVIOUS to the old current version.
func (f *Fake) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	return serve(f, ctx, "PutSecretValue", in, func(in *secretsmanager.PutSecretValueInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.putSecretValue)
}

func (f *Fake) putSecretValue(in *secretsmanager.PutSecretValueInput) (*secretsmanager.PutSecretValueOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if s.deletion != nil {
		return nil, errMarkedDeleted()
	}
	if err := validateValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	if in.SecretString == nil && in.SecretBinary == nil {
		return nil, errInvalidRequest("You must provide either SecretString or SecretBinary.")
	}
	tok, err := token(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	stages := append([]string(nil), in.VersionStages...)
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	for _, st := range stages {
		if st == "" || len(st) > 256 {
			return nil, errInvalidParam("A staging label must be 1-256 characters long.")
		}
	}
	if len(stages) > MaxLabelsPerSecret {
		return nil, errInvalidParam("You can't specify more than %d staging labels.", MaxLabelsPerSecret)
	}
	result := func(v *version) *secretsmanager.PutSecretValueOutput {
		return &secretsmanager.PutSecretValueOutput{
			ARN: aws.String(s.arn), Name: aws.String(s.name),
			VersionId: aws.String(v.id), VersionStages: append([]string(nil), v.stages...),
		}
	}
	v := s.versions[tok]
	if v != nil && v.hasValue {
		if v.sameValue(in.SecretString, in.SecretBinary) {
			return result(v), nil
		}
		return nil, errExists("You can't modify an existing version, you can only create a new version.")
	}
	if len(s.versions) == 0 && !contains(stages, StageCurrent) {
		stages = append(stages, StageCurrent)
	}
	// Labels after the call: every label now attached plus the new ones.
	labels := map[string]bool{}
	for _, x := range s.versions {
		for _, st := range x.stages {
			labels[st] = true
		}
	}
	for _, st := range stages {
		labels[st] = true
	}
	if len(labels) > MaxLabelsPerSecret {
		return nil, errLimit("You have attached the maximum number of staging labels (%d) to this secret.", MaxLabelsPerSecret)
	}
	if v == nil {
		if v, err = f.newVersion(s, tok, in.SecretString, in.SecretBinary); err != nil {
			return nil, err
		}
	} else { // the empty placeholder: the first put fills it
		v.str, v.bin, v.hasValue = cloneString(in.SecretString), cloneBytes(in.SecretBinary), true
	}
	for _, st := range stages {
		s.attach(st, v)
	}
	s.lastChanged = f.now()
	return result(v), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// UpdateSecretVersionStage moves VersionStage to MoveToVersionId and/or
// removes it from RemoveFromVersionId. If the label is on a version other
// than MoveToVersionId, RemoveFromVersionId is required and must name that
// version; a RemoveFromVersionId that does not carry the label is an
// InvalidParameterException. Moving AWSCURRENT moves AWSPREVIOUS to the old
// current version; AWSCURRENT can only be moved, not removed.
func (f *Fake) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	return serve(f, ctx, "UpdateSecretVersionStage", in, func(in *secretsmanager.UpdateSecretVersionStageInput) bool {
		return in.SecretId != nil && in.VersionStage != nil
	}, []string{"SecretId", "VersionStage"}, f.updateSecretVersionStage)
}

func (f *Fake) updateSecretVersionStage(in *secretsmanager.UpdateSecretVersionStageInput) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if s.deletion != nil {
		return nil, errMarkedDeleted()
	}
	label := *in.VersionStage
	moveID, rmID := aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
	if label == "" || len(label) > 256 {
		return nil, errInvalidParam("A staging label must be 1-256 characters long.")
	}
	if moveID == "" && rmID == "" {
		return nil, errInvalidParam("You must specify MoveToVersionId, RemoveFromVersionId, or both.")
	}
	var to, from *version
	if moveID != "" {
		if to = s.versions[moveID]; to == nil {
			return nil, errInvalidParam("Not a valid version: %s", moveID)
		}
	}
	if rmID != "" {
		if from = s.versions[rmID]; from == nil {
			return nil, errInvalidParam("Not a valid version: %s", rmID)
		}
		if !from.has(label) {
			return nil, errInvalidParam("The staging label %s is not attached to version %s, so it can't be removed from it.", label, rmID)
		}
	}
	holder := s.holder(label)
	ok := func() (*secretsmanager.UpdateSecretVersionStageOutput, error) {
		s.lastChanged = f.now()
		return &secretsmanager.UpdateSecretVersionStageOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}, nil
	}
	if to == nil { // remove only
		if label == StageCurrent {
			return nil, errInvalidParam("You can't remove the staging label AWSCURRENT from a version without moving it to another version with MoveToVersionId.")
		}
		from.remove(label)
		if label == StagePending && from.has(StageCurrent) {
			// The service ends a successful rotation this way: record it.
			now := f.now()
			s.lastRotated = &now
		}
		return ok()
	}
	if holder != nil && holder != to && from == nil {
		return nil, errInvalidParam("The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", label, holder.id)
	}
	if holder == nil && s.labelCount() >= MaxLabelsPerSecret { // a label is on at most one version: only a new one adds
		return nil, errLimit("You have attached the maximum number of staging labels (%d) to this secret.", MaxLabelsPerSecret)
	}
	s.attach(label, to)
	return ok()
}

// ListSecretVersionIds lists the versions that hold a value (never the empty
// placeholder RotateSecret makes): the labelled ones, and with
// IncludeDeprecated also those without a label. MaxResults (1–100) pages the
// list; NextToken continues it, and one the fake did not hand out is an
// InvalidNextTokenException. The service documents no order; the fake lists
// in creation order, oldest first, so a caller must sort by CreatedDate.
func (f *Fake) ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	return serve(f, ctx, "ListSecretVersionIds", in, func(in *secretsmanager.ListSecretVersionIdsInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.listSecretVersionIds)
}

func (f *Fake) listSecretVersionIds(in *secretsmanager.ListSecretVersionIdsInput) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	max := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, errInvalidParam("MaxResults must be between 1 and 100.")
		}
		max = int(*in.MaxResults)
	}
	var ids []string
	for _, id := range s.order {
		v := s.versions[id]
		if v.hasValue && (len(v.stages) > 0 || aws.ToBool(in.IncludeDeprecated)) {
			ids = append(ids, id)
		}
	}
	start := 0
	if tok := aws.ToString(in.NextToken); tok != "" {
		n, err := fmt.Sscanf(tok, "smfake-page-%d", &start)
		if err != nil || n != 1 || start < 0 || start > len(ids) {
			return nil, errInvalidNextToken()
		}
	}
	end := min(start+max, len(ids))
	out := &secretsmanager.ListSecretVersionIdsOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), Versions: []types.SecretVersionsListEntry{}}
	for _, id := range ids[start:end] {
		v := s.versions[id]
		e := types.SecretVersionsListEntry{VersionId: aws.String(id), CreatedDate: aws.Time(v.created)}
		if len(v.stages) > 0 {
			e.VersionStages = append([]string(nil), v.stages...)
		}
		if s.kmsKeyID != nil {
			e.KmsKeyIds = []string{*s.kmsKeyID}
		}
		out.Versions = append(out.Versions, e)
	}
	if end < len(ids) {
		out.NextToken = aws.String(fmt.Sprintf("smfake-page-%d", end))
	}
	return out, nil
}

// RotateSecret configures rotation (RotationLambdaARN, RotationRules) and
// starts a rotation: it creates the empty placeholder version whose id is
// ClientRequestToken and attaches AWSPENDING to it. It fails with
// InvalidRequestException if AWSPENDING is on a version other than AWSCURRENT
// ("a previous rotation isn't complete"), or if no Lambda is configured.
//
// The fake invokes no function: the caller runs the four steps (or, for
// RotateImmediately=false, testSecret only) and afterwards calls
// RemovePending, as the service does after a successful rotation. A repeated
// call with the token of the rotation in progress returns that rotation.
func (f *Fake) RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	return serve(f, ctx, "RotateSecret", in, func(in *secretsmanager.RotateSecretInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.rotateSecret)
}

func (f *Fake) rotateSecret(in *secretsmanager.RotateSecretInput) (*secretsmanager.RotateSecretOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if s.deletion != nil {
		return nil, errMarkedDeleted()
	}
	if r := in.RotationRules; r != nil {
		if r.AutomaticallyAfterDays != nil && (*r.AutomaticallyAfterDays < 1 || *r.AutomaticallyAfterDays > 1000) {
			return nil, errInvalidParam("RotationRules.AutomaticallyAfterDays must be within 1-1000.")
		}
		if r.AutomaticallyAfterDays != nil && r.ScheduleExpression != nil {
			return nil, errInvalidParam("You can't specify both AutomaticallyAfterDays and ScheduleExpression.")
		}
	}
	lambdaARN := in.RotationLambdaARN
	if lambdaARN == nil || *lambdaARN == "" {
		lambdaARN = s.lambdaARN
	}
	if lambdaARN == nil || *lambdaARN == "" {
		return nil, errInvalidRequest("No Lambda rotation function ARN is associated with this secret.")
	}
	tok, err := token(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	result := &secretsmanager.RotateSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(tok)}
	if p := s.holder(StagePending); p != nil && !p.has(StageCurrent) {
		if p.id == tok {
			return result, nil // the same request again
		}
		return nil, errInvalidRequest("A previous rotation isn't complete. That rotation will be reattempted.")
	}
	if _, exists := s.versions[tok]; exists {
		return nil, errExists("A version with ClientRequestToken %s already exists.", tok)
	}
	if s.labelCount() >= MaxLabelsPerSecret && s.holder(StagePending) == nil {
		return nil, errLimit("You have attached the maximum number of staging labels (%d) to this secret.", MaxLabelsPerSecret)
	}
	v, err := f.newVersion(s, tok, nil, nil)
	if err != nil {
		return nil, err
	}
	s.attach(StagePending, v)
	s.rotationEnabled = true
	s.lambdaARN = cloneString(lambdaARN)
	if in.RotationRules != nil {
		s.rules = cloneRules(in.RotationRules)
	}
	s.lastChanged = f.now()
	return result, nil
}

// TagResource adds or replaces tags by key.
func (f *Fake) TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	const op = "TagResource"
	if err := f.begin(ctx, op, in); err != nil {
		return nil, err
	}
	if in == nil || in.SecretId == nil || in.Tags == nil {
		return nil, opErr(op, required(op, "SecretId", "Tags"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, opErr(op, err)
	}
	for _, t := range in.Tags {
		if t.Key == nil || *t.Key == "" {
			return nil, opErr(op, errInvalidParam("A tag key can't be empty."))
		}
	}
	for _, t := range in.Tags {
		replaced := false
		for i := range s.tags {
			if aws.ToString(s.tags[i].Key) == *t.Key {
				s.tags[i] = types.Tag{Key: cloneString(t.Key), Value: cloneString(t.Value)}
				replaced = true
			}
		}
		if !replaced {
			s.tags = append(s.tags, types.Tag{Key: cloneString(t.Key), Value: cloneString(t.Value)})
		}
	}
	s.lastChanged = f.now()
	return &secretsmanager.TagResourceOutput{}, nil
}

// UntagResource removes tags by key; absent keys are ignored.
func (f *Fake) UntagResource(ctx context.Context, in *secretsmanager.UntagResourceInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error) {
	const op = "UntagResource"
	if err := f.begin(ctx, op, in); err != nil {
		return nil, err
	}
	if in == nil || in.SecretId == nil || in.TagKeys == nil {
		return nil, opErr(op, required(op, "SecretId", "TagKeys"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, opErr(op, err)
	}
	kept := s.tags[:0]
	for _, t := range s.tags {
		if !contains(in.TagKeys, aws.ToString(t.Key)) {
			kept = append(kept, t)
		}
	}
	s.tags = kept
	s.lastChanged = f.now()
	return &secretsmanager.UntagResourceOutput{}, nil
}

// DeleteSecret schedules deletion after RecoveryWindowInDays (7-30, default
// 30), or deletes at once with ForceDeleteWithoutRecovery. A secret scheduled
// for deletion still answers DescribeSecret; reading or changing its value is
// an InvalidRequestException.
func (f *Fake) DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	const op = "DeleteSecret"
	if err := f.begin(ctx, op, in); err != nil {
		return nil, err
	}
	if in == nil || in.SecretId == nil {
		return nil, opErr(op, required(op, "SecretId"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	force := aws.ToBool(in.ForceDeleteWithoutRecovery)
	if in.RecoveryWindowInDays != nil && force {
		return nil, opErr(op, errInvalidParam("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."))
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, opErr(op, errInvalidParam("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."))
		}
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, opErr(op, err)
	}
	now := f.now()
	if force {
		delete(f.secrets, s.arn)
		return &secretsmanager.DeleteSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), DeletionDate: aws.Time(now)}, nil
	}
	if s.deletion != nil {
		return nil, opErr(op, errInvalidRequest("You can't perform this operation on the secret because it was already scheduled for deletion."))
	}
	when := now.Add(time.Duration(days) * 24 * time.Hour)
	s.deletion = &when
	return &secretsmanager.DeleteSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), DeletionDate: aws.Time(when)}, nil
}

// RestoreSecret cancels a scheduled deletion.
func (f *Fake) RestoreSecret(ctx context.Context, in *secretsmanager.RestoreSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.RestoreSecretOutput, error) {
	const op = "RestoreSecret"
	if err := f.begin(ctx, op, in); err != nil {
		return nil, err
	}
	if in == nil || in.SecretId == nil {
		return nil, opErr(op, required(op, "SecretId"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, opErr(op, err)
	}
	s.deletion = nil
	return &secretsmanager.RestoreSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}, nil
}

// --- test helpers -----------------------------------------------------------

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
