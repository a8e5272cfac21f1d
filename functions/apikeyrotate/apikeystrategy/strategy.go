package apikeystrategy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Strategy rotates API keys and webhook signing keys. It implements
// rotation.Strategy and rotation.Finisher.
type Strategy struct {
	cfg Config
}

// New returns the strategy for a validated configuration (see LoadConfig).
func New(cfg Config) (*Strategy, error) {
	if _, err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Strategy{cfg: cfg}, nil
}

var (
	_ rotation.Strategy = (*Strategy)(nil)
	_ rotation.Finisher = (*Strategy)(nil)
)

// Kind is the configured kind, or "apikey" when the kind comes from the secret.
func (s *Strategy) Kind() string {
	if s.cfg.Kind != "" {
		return s.cfg.Kind
	}
	return apikey.KindAPIKey
}

// Create issues a new key as the pending caller secret.
func (s *Strategy) Create(ctx context.Context, req *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	cur, err := parseCaller(req.Current, "AWSCURRENT")
	if err != nil {
		return nil, err
	}
	kind, err := s.kind(cur)
	if err != nil {
		return nil, err
	}
	key, err := apikey.GenerateKey(s.prefix(kind))
	if err != nil {
		return nil, rotation.NewError(rotation.ClassDependency, "crypto/rand", "no random key could be generated", err)
	}
	req.Redact.Add(key.Reveal())
	p, _ := apikey.ParseKey(key.Reveal())
	created := req.Now.UTC().Truncate(time.Second)
	pending := &apikey.CallerSecret{Kind: kind, KeyID: p.KeyID, Key: key, CreatedAt: created, ExpiresAt: created.Add(s.cfg.MaxAge)}
	value, err := pending.Encode()
	if err != nil {
		return nil, rotation.NewError(rotation.ClassDependency, "encode", "the caller secret could not be encoded", err)
	}
	resp := &rotation.CreateResponse{Value: value}
	resp.Details = map[string]string{"keyId": p.KeyID, "expiresAt": pending.ExpiresAt.Format(time.RFC3339)}
	if iv := req.Secret.RotationInterval; iv > 0 && iv+s.cfg.Overlap > s.cfg.MaxAge {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("keys expire after APIKEY_MAX_AGE %s, sooner than the rotation interval %s plus the overlap %s: callers will be refused before the next rotation", s.cfg.MaxAge, iv, s.cfg.Overlap))
	}
	return resp, nil
}

// Set adds the pending key's verifier record and, if configured, registers it.
func (s *Strategy) Set(ctx context.Context, req *rotation.SetRequest) (*rotation.SetResponse, error) {
	pend, cur, err := s.pair(req.Pending, req.Current)
	if err != nil {
		return nil, err
	}
	alg, pepper, err := s.pepper(ctx, req.Store, pend.Kind)
	if err != nil {
		return nil, err
	}
	before, err := revokeBefore(req.Secret.Tags, req.Now)
	if err != nil {
		return nil, err
	}
	pol := policy{Owner: apikey.OwnerID(req.Secret.ARN), Overlap: s.cfg.Overlap, RevokeBefore: before, Now: req.Now}
	resp := &rotation.SetResponse{}
	resp.Details = map[string]string{"keyId": pend.KeyID}
	var next *apikey.VerifierDoc
	var revoked []string
	err = s.updateVerifier(ctx, req.Store, req.Token, "set", func(ver *rotation.Version) ([]byte, error) {
		doc := &apikey.VerifierDoc{Kind: pend.Kind}
		if ver != nil {
			var err error
			if doc, err = parseVerifier(ver.Value.Bytes()); err != nil {
				return nil, err
			}
		}
		var err error
		if next, revoked, err = applySet(doc, pend, cur, alg, pepper, pol); err != nil {
			return nil, err
		}
		b, err := next.Encode()
		if err != nil {
			return nil, rotation.NewError(rotation.ClassDependency, "encode", "the verifier document could not be encoded", err)
		}
		if ver != nil && bytes.Equal(b, ver.Value.Bytes()) {
			// A retried setSecret: the current verifier version already is
			// what this step would write.
			resp.Details["verifierVersion"] = ver.ID
			return nil, nil
		}
		return b, nil
	}, func(token string) { resp.Details["verifierVersion"] = token })
	if err != nil {
		return nil, err
	}
	if len(revoked) > 0 {
		s.reportEmergency(&resp.Report, before, revoked)
	}
	if s.cfg.RegisterURL != "" {
		rec := next.Find(pend.KeyID)
		if err := s.register(ctx, req.Store, req.Token, req.Now, next, rec); err != nil {
			return resp, err
		}
		resp.Details["registered"] = "true"
	}
	return resp, nil
}

// Test verifies the pending key through the consumer library against the
// verifier secret's current records (what services see, written by setSecret),
// and calls the test endpoint if one is configured.
func (s *Strategy) Test(ctx context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	if req.ConfigTest {
		if c, err := parseCaller(req.Current, "AWSCURRENT"); err == nil && !c.Issued() {
			// A secret waiting for its first key: prove the verifier secret is readable.
			if _, err := req.Store.GetSecret(ctx, s.cfg.VerifierSecretID, "", rotation.StageCurrent); err != nil {
				return nil, err
			}
			return &rotation.TestResponse{Report: rotation.Report{Warnings: []string{"the secret holds no key yet; only the verifier secret was read"}}}, nil
		}
	}
	pend, cur, err := s.pair(req.Pending, req.Current)
	if err != nil {
		return nil, err
	}
	// What consumers see: the verifier secret's AWSCURRENT version.
	ver, err := req.Store.GetSecret(ctx, s.cfg.VerifierSecretID, "", rotation.StageCurrent)
	if err != nil {
		return nil, err
	}
	if ver == nil {
		return nil, &rotation.Error{Class: rotation.ClassState, Op: "verifier secret", Retryable: true,
			Msg: "the verifier secret has no value: setSecret has not completed"}
	}
	doc, err := parseVerifier(ver.Value.Bytes())
	if err != nil {
		return nil, err
	}
	var pepper []byte
	if doc.PepperFingerprint != "" && s.cfg.PepperSecretID != "" {
		if _, pepper, err = s.pepper(ctx, req.Store, pend.Kind); err != nil {
			return nil, err
		}
	}
	ring, err := apikey.NewKeyring(doc, pepper)
	if err != nil {
		return nil, rotation.NewError(rotation.ClassConfiguration, "verifier secret", "the verifier records cannot be used", err)
	}
	resp := &rotation.TestResponse{}
	if err := verifyWith(ring, pend, req.Now); err != nil {
		return nil, &rotation.Error{Class: rotation.ClassState, Op: "verify pending key", Retryable: true,
			Msg: "the pending key does not verify against the verifier secret's current records (" + err.Error() + "): setSecret has not completed, or a concurrent writer of a shared verifier secret replaced its version; the retried rotation writes it again"}
	}
	if !req.ConfigTest && cur.Issued() && cur.KeyID != pend.KeyID {
		if err := verifyWith(ring, cur, req.Now); err != nil {
			resp.Warnings = append(resp.Warnings, "the current key "+cur.KeyID+" does not verify against the pending verifier records ("+err.Error()+"); callers still using it will be refused")
		}
	}
	if s.cfg.TestURL != "" {
		if err := s.callTest(ctx, pend, req.Now); err != nil {
			return resp, err
		}
		resp.Details = map[string]string{"testUrl": "2xx"}
	}
	return resp, nil
}

// verifyWith checks c's key against ring at now: the key itself for API
// keys, a probe signature for webhook keys.
func verifyWith(ring *apikey.Keyring, c *apikey.CallerSecret, now time.Time) error {
	var id string
	var err error
	if c.Kind == apikey.KindWebhook {
		probe := []byte(`{"type":"rotation.probe","keyId":"` + c.KeyID + `"}`)
		id, err = ring.VerifySignature(apikey.SignWebhook(c.Key, now, probe), probe, now, apikey.DefaultTolerance)
		if err == nil && id != c.KeyID {
			// Another live key signed nothing; only this key can match.
			err = errors.New("the probe verified under another key id")
		}
		return err
	}
	id, err = ring.Verify(c.Key.Reveal(), now)
	if err == nil && id != c.KeyID {
		err = errors.New("the key verified under another key id")
	}
	return err
}

// AfterFinish sets the previous key's record to retiring until now + overlap.
func (s *Strategy) AfterFinish(ctx context.Context, req *rotation.FinishRequest) (*rotation.FinishResponse, error) {
	prev, err := parseCaller(req.Previous, "AWSPREVIOUS")
	if err != nil {
		return nil, err
	}
	cur, err := parseCaller(req.Current, "AWSCURRENT")
	if err != nil {
		return nil, err
	}
	resp := &rotation.FinishResponse{}
	if s.cfg.Overlap < CallerCacheTTL {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("the overlap %s is shorter than the callers' secret-cache time %s", s.cfg.Overlap, CallerCacheTTL))
	}
	if !prev.Issued() && !cur.Issued() {
		return resp, nil
	}
	mkCurrent := func() (apikey.Record, error) {
		alg, pepper, err := s.pepper(ctx, req.Store, cur.Kind)
		if err != nil {
			return apikey.Record{}, err
		}
		r, err := apikey.NewRecord(cur, alg, pepper, apikey.StatusActive)
		r.Owner = apikey.OwnerID(req.Secret.ARN)
		return r, err
	}
	if !cur.Issued() {
		mkCurrent = nil
	}
	before, err := revokeBefore(req.Secret.Tags, req.Now)
	if err != nil {
		return resp, err
	}
	owner := apikey.OwnerID(req.Secret.ARN)
	// The previous key retires from now, the time of the promotion (this
	// hook runs right after it; a retried hook finds the record retiring
	// already and keeps its earlier notAfter) — unless the operator asked
	// for an emergency revocation of the keys issued before a time.
	until := req.Now.Add(s.cfg.Overlap)
	var final *apikey.VerifierDoc
	var revoked []string
	err = s.updateVerifier(ctx, req.Store, req.Token, "finish", func(ver *rotation.Version) ([]byte, error) {
		if ver == nil {
			return nil, rotation.NewError(rotation.ClassState, "verifier secret", "the verifier secret has no value; the previous key could not be set to retiring", nil)
		}
		doc, err := parseVerifier(ver.Value.Bytes())
		if err != nil {
			return nil, err
		}
		final = doc
		changed, err := applyFinish(doc, prev.KeyID, cur.KeyID, until, mkCurrent)
		if err != nil {
			return nil, err
		}
		revoked = applyEmergency(doc, owner, prev.KeyID, cur.KeyID, cur.CreatedAt, before, req.Now)
		if !changed && len(revoked) == 0 {
			return nil, nil
		}
		b, err := doc.Encode()
		if err != nil {
			return nil, rotation.NewError(rotation.ClassDependency, "encode", "the verifier document could not be encoded", err)
		}
		return b, nil
	}, nil)
	if err != nil {
		return resp, err
	}
	resp.Details = map[string]string{"previousKeyId": prev.KeyID}
	if r := final.Find(prev.KeyID); r != nil && r.Status == apikey.StatusRetiring && !r.NotAfter.IsZero() {
		resp.Details["retiringUntil"] = r.NotAfter.Format(time.RFC3339)
	}
	if len(revoked) > 0 {
		s.reportEmergency(&resp.Report, before, revoked)
	}
	return resp, nil
}

// reportEmergency adds the emergency revocation's warning and details.
func (s *Strategy) reportEmergency(rep *rotation.Report, before time.Time, revoked []string) {
	if rep.Details == nil {
		rep.Details = map[string]string{}
	}
	rep.Details["mode"] = "emergency-revoke"
	rep.Details["revokeBefore"] = before.Format(time.RFC3339)
	rep.Details["revokedKeyIds"] = strings.Join(revoked, ",")
	rep.Warnings = append(rep.Warnings, fmt.Sprintf("EMERGENCY REVOCATION (%s): the keys of this caller issued before %s [%s] are revoked now, before their overlap ends; callers still using them are refused (the key being replaced is revoked right after the promotion)", EmergencyRevokeTag, before.Format(time.RFC3339), strings.Join(revoked, ", ")))
}

// verifierAttempts bounds how often a verifier write is retried after a
// concurrent writer of the shared verifier secret moved AWSCURRENT.
const verifierAttempts = 5

// updateVerifier is the read-modify-write of the verifier secret, which
// several caller secrets may share: it reads AWSCURRENT, lets change build
// the new document from it (nil: nothing to write), and writes it with
// Store.SwapSecret over the version read, under a token derived from the
// rotation token, the step and that version (so a retried step rewrites the
// same version). When another rotation wrote the verifier secret in
// between, the swap is refused and the loop reads again and re-applies the
// change on top of the other writer's records, at most verifierAttempts
// times. wrote, if set, learns the token of the version written.
func (s *Strategy) updateVerifier(ctx context.Context, st rotation.Store, rotationToken, step string, change func(ver *rotation.Version) ([]byte, error), wrote func(token string)) error {
	var err error
	for range verifierAttempts {
		var ver *rotation.Version
		if ver, err = st.GetSecret(ctx, s.cfg.VerifierSecretID, "", rotation.StageCurrent); err != nil {
			return err
		}
		var b []byte
		if b, err = change(ver); err != nil || b == nil {
			return err
		}
		baseID := ""
		if ver != nil {
			baseID = ver.ID
		}
		token := derivedToken(rotationToken, step+"\x00"+baseID)
		err = st.SwapSecret(ctx, s.cfg.VerifierSecretID, baseID, token, b)
		if err == nil {
			if wrote != nil {
				wrote(token)
			}
			return nil
		}
		if errors.Is(err, rotation.ErrSecretMoved) {
			continue
		}
		if ver == nil && rotation.ClassOf(err) == rotation.ClassState {
			return rotation.NewError(rotation.ClassConfiguration, "APIKEY_VERIFIER_SECRET_ARN", "the verifier secret could not be written; create it first (its initial value may be empty)", err)
		}
		return err
	}
	return &rotation.Error{Class: rotation.ClassState, Op: "verifier secret", Retryable: true, Cause: err,
		Msg: fmt.Sprintf("the shared verifier secret was written by other rotations %d times while this one tried to update it; the retried rotation tries again", verifierAttempts)}
}

func (s *Strategy) kind(c *apikey.CallerSecret) (string, error) {
	if s.cfg.Kind != "" && s.cfg.Kind != c.Kind {
		return "", rotation.NewError(rotation.ClassConfiguration, "APIKEY_KIND", "APIKEY_KIND is "+s.cfg.Kind+" but the secret is of kind "+c.Kind+"; fix one of them", nil)
	}
	return c.Kind, nil
}

func (s *Strategy) prefix(kind string) string {
	switch {
	case s.cfg.Prefix != "":
		return s.cfg.Prefix
	case kind == apikey.KindWebhook:
		return DefaultWebhookPrefix
	}
	return DefaultAPIKeyPrefix
}

// pair parses the pending (must hold a key) and current caller secrets.
func (s *Strategy) pair(pv, cv *rotation.Version) (pend, cur *apikey.CallerSecret, err error) {
	if pend, err = parseCaller(pv, "AWSPENDING"); err != nil {
		return nil, nil, err
	}
	if cur, err = parseCaller(cv, "AWSCURRENT"); err != nil {
		return nil, nil, err
	}
	if !pend.Issued() {
		return nil, nil, rotation.NewError(rotation.ClassInput, "caller secret", "the pending caller secret holds no key", nil)
	}
	if _, err := s.kind(pend); err != nil {
		return nil, nil, err
	}
	if cur.Kind != pend.Kind {
		return nil, nil, rotation.NewError(rotation.ClassInput, "caller secret", "the pending and current caller secrets are of different kinds", nil)
	}
	return pend, cur, nil
}

// pepper returns the hash algorithm for new API-key records and the pepper.
func (s *Strategy) pepper(ctx context.Context, st rotation.Store, kind string) (string, []byte, error) {
	if kind == apikey.KindWebhook {
		if s.cfg.PepperSecretID != "" {
			return "", nil, configErr("APIKEY_PEPPER_SECRET_ARN", "has no meaning for webhook keys (their verifier must hold the key itself); unset it", nil)
		}
		return "", nil, nil
	}
	if s.cfg.PepperSecretID == "" {
		return apikey.AlgSHA256, nil, nil
	}
	v, err := st.GetSecret(ctx, s.cfg.PepperSecretID, "", rotation.StageCurrent)
	if err != nil {
		return "", nil, err
	}
	if v == nil || len(v.Value) < apikey.MinPepperLen {
		return "", nil, configErr("APIKEY_PEPPER_SECRET_ARN", fmt.Sprintf("must name a secret whose value has at least %d bytes", apikey.MinPepperLen), nil)
	}
	return apikey.AlgHMACSHA256, v.Value.Bytes(), nil
}

func parseCaller(v *rotation.Version, stage string) (*apikey.CallerSecret, error) {
	if v == nil {
		return nil, rotation.NewError(rotation.ClassState, "caller secret", "the "+stage+" version is missing", nil)
	}
	c, err := apikey.ParseCaller(v.Value.Bytes())
	if err != nil {
		return nil, rotation.NewError(rotation.ClassInput, "caller secret", "the "+stage+" caller secret is not valid: "+err.Error(), nil)
	}
	return c, nil
}

func parseVerifier(b []byte) (*apikey.VerifierDoc, error) {
	d, err := apikey.ParseVerifier(b)
	if err != nil {
		return nil, rotation.NewError(rotation.ClassInput, "verifier secret", "the verifier secret is not valid: "+err.Error(), nil)
	}
	return d, nil
}
