package apikeystrategy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rotation-suite/rotation/internal/envconf"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// The steps of a rotation: rotation.Strategy (Create, Set, Test) and
// rotation.Finisher (AfterFinish, the strategy's part of finishSecret).

// Create issues a new key as the pending caller secret, with expiresAt one
// MaxAge after its creation; it warns when that comes before the next
// rotation plus the overlap.
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
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("keys expire after %s %s, sooner than the rotation interval %s plus the overlap %s: callers will be refused before the next rotation", EnvMaxAge, envconf.FormatDuration(s.cfg.MaxAge), envconf.FormatDuration(iv), envconf.FormatDuration(s.cfg.Overlap)))
	}
	return resp, nil
}

// Set writes the verifier document applySet builds — the pending key's
// record added, this caller's other records moved on (see applySet), the
// emergency revocation applied if EmergencyRevokeTag asks for one — with a
// compare-and-swap of the shared verifier secret (updateVerifier), and then,
// if configured, registers the new record.
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
		b, err := encodeVerifier(next)
		if err != nil {
			return nil, err
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

// AfterFinish runs right after the engine promoted the pending key: it sets
// the previous key's record to retiring until now + overlap (never later
// than its expiresAt), puts the current key's record back if a writer of the
// shared verifier secret lost it (see applyFinish), and applies the
// emergency revocation if EmergencyRevokeTag asks for one (applyEmergency).
// It is idempotent: a re-run finds the record retiring and keeps its
// notAfter. When it fails, the promotion stands and the engine fails
// finishSecret as retryable; the retried finishSecret runs it again.
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
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("the overlap %s is shorter than the callers' secret-cache time %s", envconf.FormatDuration(s.cfg.Overlap), envconf.FormatDuration(CallerCacheTTL)))
	}
	if !prev.Issued() && !cur.Issued() {
		return resp, nil
	}
	owner := apikey.OwnerID(req.Secret.ARN)
	mkCurrent := func() (apikey.Record, error) {
		alg, pepper, err := s.pepper(ctx, req.Store, cur.Kind)
		if err != nil {
			return apikey.Record{}, err
		}
		r, err := apikey.NewRecord(cur, alg, pepper, apikey.StatusActive)
		r.Owner = owner
		return r, err
	}
	if !cur.Issued() {
		mkCurrent = nil
	}
	before, err := revokeBefore(req.Secret.Tags, req.Now)
	if err != nil {
		return resp, err
	}
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
		return encodeVerifier(doc)
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
