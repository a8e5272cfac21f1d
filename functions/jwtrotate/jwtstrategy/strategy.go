// Package jwtstrategy is the JWT signing-key rotation strategy: each secret
// version holds an active key, a next key that is already published in the
// JWK Set, and retired public keys kept until no token they signed can still
// be valid (the format is pkg/jwks.Document; docs/jwt.md describes it).
// createSecret promotes the next key, generates a fresh next key and retires
// the active one; setSecret publishes the pending JWK Set to an optional
// public-JWKS secret; testSecret proves the pending keys sign and verify with
// an independent JWKS consumer (keyfunc) and that tokens from the current
// key still verify. Private keys are sealed with pkg/envelope under a KMS
// key, bound to the secret and the kid. An explicit emergency re-key mode
// (a tag on the secret) replaces both keys at once. A retired key's removal
// clock starts no earlier than the first createSecret that finds it retired
// in AWSCURRENT, i.e. after the promotion that retired it, however late that
// promotion came.
package jwtstrategy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/aws/smithy-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// RekeyTag is the secret tag that requests an emergency re-key: set it to a
// new value (a nonce: a date, a ticket number) and rotate. The handled nonce
// is recorded in the new version, so later rotations are normal again while
// the tag stays; a different value requests another re-key.
const RekeyTag = "jwt-rotation/emergency-rekey"

// sizeWarning is the document size above which Create warns (Secrets
// Manager's limit is 65536 bytes).
const sizeWarning = 48 << 10

// Strategy rotates JWT signing keys. It implements rotation.Strategy.
type Strategy struct {
	cfg    Config
	sealer jwks.Sealer
	// generate makes a private key; tests replace it.
	generate func(alg string, rsaBits int) (crypto.Signer, error)
}

var _ rotation.Strategy = (*Strategy)(nil)

// New returns the strategy. sealer is a pkg/envelope Envelope over the KMS
// key cfg.KMSKeyARN.
func New(cfg Config, sealer jwks.Sealer) *Strategy {
	return &Strategy{cfg: cfg, sealer: sealer, generate: GenerateKey}
}

// Kind names the strategy.
func (s *Strategy) Kind() string { return "jwt" }

// GenerateKey makes a private key for alg from crypto/rand.
func GenerateKey(alg string, rsaBits int) (crypto.Signer, error) {
	switch alg {
	case jwks.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwks.RS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case jwks.EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, jwks.CheckAlgorithm(alg)
}

// inputErr wraps a document problem as a ClassInput error.
func inputErr(op, what string, err error) error {
	return rotation.NewError(rotation.ClassInput, op, what, err)
}

// sealErr classifies a failure to seal or open a private key.
func sealErr(op, what string, err error) error {
	var re *rotation.Error
	switch {
	case errors.Is(err, envelope.ErrProvider):
		// The class comes from the *extcall.Error pkg/envelope puts in the chain.
		class := rotation.ClassOf(err)
		msg := what + ": the KMS call failed"
		if class == rotation.ClassConfiguration || class == rotation.ClassPermission {
			msg += "; check that JWT_KMS_KEY_ARN names an enabled symmetric key and that the function's role has kms:GenerateDataKey and kms:Decrypt on it"
		}
		return rotation.NewError(class, op, msg, err)
	case errors.Is(err, envelope.ErrKeyNotAllowed):
		return rotation.NewError(rotation.ClassConfiguration, op, what+": the sealed key names a KMS key other than JWT_KMS_KEY_ARN (sealed under another key, or its header was altered); no KMS call was made", err)
	case errors.Is(err, envelope.ErrContextMismatch):
		return rotation.NewError(rotation.ClassInput, op, what+": the sealed key is bound to another secret or kid (copied between secrets or edited by hand); use the emergency re-key mode to replace it", err)
	case errors.Is(err, envelope.ErrAuthentication), errors.Is(err, envelope.ErrMalformed), errors.Is(err, envelope.ErrUnsupportedVersion), errors.Is(err, jwks.ErrKeyMismatch), errors.Is(err, jwks.ErrMalformed):
		return rotation.NewError(rotation.ClassInput, op, what+": the sealed private key is damaged or altered; use the emergency re-key mode to replace it", err)
	case errors.As(err, &re):
		return err
	}
	return rotation.NewError(rotation.ClassDependency, op, what, err)
}

// parse parses a secret value as a key document.
func parse(op, which string, v []byte) (*jwks.Document, error) {
	d, err := jwks.ParseDocument(v)
	if err != nil {
		return nil, inputErr(op, "the "+which+" value is not a valid JWT key document (see docs/jwt.md)", err)
	}
	return d, nil
}

// stamp is the clock the documents record: UTC, whole seconds.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func (s *Strategy) newKey(ctx context.Context, secretName, alg string, now time.Time) (*jwks.SigningKey, error) {
	priv, err := s.generate(alg, s.cfg.RSABits)
	if err != nil {
		return nil, rotation.NewError(rotation.ClassDependency, "generate-key", "generating an "+alg+" key failed", err)
	}
	k, err := jwks.Seal(ctx, s.sealer, secretName, priv, alg, now)
	if err != nil {
		return nil, sealErr("kms:GenerateDataKey", "sealing the new private key", err)
	}
	return k, nil
}

// Create builds the pending document: { active: current next, next: a fresh
// key, retired: current active plus the retired keys still needed }, or, on
// the first rotation, fresh active and next keys, or, when the secret's
// RekeyTag carries a new nonce, fresh active and next keys with the leaked
// kids dropped.
func (s *Strategy) Create(ctx context.Context, req *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	cur, err := parse("parse-current", "AWSCURRENT", req.Current.Value.Bytes())
	if err != nil {
		return nil, err
	}
	now := stamp(req.Now)
	name := req.Secret.Name
	alg := cur.Algorithm
	if alg == "" {
		alg = s.cfg.Algorithm
	}
	resp := &rotation.CreateResponse{}
	rep := &resp.Report
	rep.Details = map[string]string{"algorithm": alg}
	if iv := req.Secret.RotationInterval; iv > 0 && iv < s.cfg.MinPublish {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the rotation schedule (every %s) is shorter than JWT_MIN_PUBLISH (%s): a next key may start signing before every verifier has fetched it; rotate less often or lower JWT_MIN_PUBLISH to the verifiers' real JWK Set cache time", iv, s.cfg.MinPublish))
	}
	nonce := strings.TrimSpace(req.Secret.Tags[RekeyTag])
	rekey := nonce != "" && (cur.EmergencyRekey == nil || cur.EmergencyRekey.Nonce != nonce)

	next := &jwks.Document{SchemaVersion: jwks.SchemaVersion, Algorithm: alg, EmergencyRekey: cur.EmergencyRekey}
	var removed []string
	keepRetired := func(r jwks.RetiredKey, drop []string) {
		// A longer removal delay configured since the key retired applies
		// to it too (a shorter one never shortens a stored time).
		if due := r.RetiredAt.Add(s.cfg.RemovalDelay()); due.After(r.RemoveAfter) {
			r.RemoveAfter = due
		}
		// The key AWSCURRENT's own rotation retired signed until that
		// version was promoted, at an unknown time after its createSecret
		// (the service retries whole rotations; finishSecret can come much
		// later). This createSecret read that version as AWSCURRENT, so the
		// promotion is behind us: the removal clock starts now at the latest.
		if retiredByPromotionOf(cur, r) {
			if due := now.Add(s.cfg.RemovalDelay()); due.After(r.RemoveAfter) {
				r.RemoveAfter = due
			}
		}
		switch {
		case slices.Contains(drop, r.KID):
		case !r.RemoveAfter.After(now):
			removed = append(removed, r.KID)
		default:
			next.Retired = append(next.Retired, r)
		}
	}
	switch {
	case cur.Bootstrap() || rekey:
		if next.Active, err = s.newKey(ctx, name, alg, now); err != nil {
			return nil, err
		}
		next.Active.ActivatedAt = now
		if next.Next, err = s.newKey(ctx, name, alg, now); err != nil {
			return nil, err
		}
		if cur.Bootstrap() {
			rep.Details["mode"] = "bootstrap"
		}
		if rekey {
			var dropped []string
			if !cur.Bootstrap() {
				dropped = []string{cur.Active.KID, cur.Next.KID}
			}
			for _, r := range cur.Retired {
				keepRetired(r, dropped)
			}
			next.EmergencyRekey = &jwks.Rekey{Nonce: nonce, HandledAt: now}
			for _, kid := range dropped {
				next.EmergencyRekey.Dropped = append(next.EmergencyRekey.Dropped, jwks.KeyRef{KID: kid})
			}
			rep.Details["mode"] = "emergency-rekey"
			rep.Details["rekeyNonce"] = nonce
			rep.Details["droppedKids"] = strings.Join(dropped, ",")
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("EMERGENCY RE-KEY (%s=%s): fresh active and next keys; the leaked kids [%s] are dropped from the JWK Set, so tokens they signed stop verifying as soon as verifiers reload it, and verifiers that cached the old set reject the new key's tokens until they reload (a short verification gap)", RekeyTag, nonce, strings.Join(dropped, ", ")))
		}
	default:
		// The key about to sign must open and be the key its kid names:
		// fail before anything is written if it was damaged.
		if _, err := jwks.Open(ctx, s.sealer, name, cur.Next); err != nil {
			return nil, sealErr("kms:Decrypt", "opening the current next key "+cur.Next.KID+" (which this rotation would make active)", err)
		}
		promoted := *cur.Next
		promoted.ActivatedAt = now
		next.Active = &promoted
		if age := now.Sub(promoted.PublishedAt); age < s.cfg.MinPublish {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("key %s becomes active after being published for only %s (JWT_MIN_PUBLISH %s): verifiers that cached the JWK Set before it was published must reload it on the unknown kid", promoted.KID, age, s.cfg.MinPublish))
		}
		if next.Next, err = s.newKey(ctx, name, alg, now); err != nil {
			return nil, err
		}
		next.Retired = append(next.Retired, jwks.RetiredKey{
			KID: cur.Active.KID, Alg: cur.Active.Alg, PublicJWK: cur.Active.PublicJWK,
			RetiredAt: now, RemoveAfter: now.Add(s.cfg.RemovalDelay()),
		})
		for _, r := range cur.Retired {
			keepRetired(r, nil)
		}
		rep.Details["mode"] = "rotate"
		rep.Details["retiredKid"] = cur.Active.KID
	}
	keys := []json.RawMessage{next.Active.PublicJWK, next.Next.PublicJWK}
	for _, r := range next.Retired {
		keys = append(keys, r.PublicJWK)
	}
	next.JWKS = &jwks.Set{Keys: keys}
	if err := next.Validate(); err != nil {
		return nil, rotation.NewError(rotation.ClassDependency, "build-document", "the new document failed its own validation", err)
	}
	rep.Details["activeKid"] = next.Active.KID
	rep.Details["nextKid"] = next.Next.KID
	if len(removed) > 0 {
		rep.Details["removedKids"] = strings.Join(removed, ",")
	}
	resp.Value, err = next.Marshal()
	if err != nil {
		return nil, rotation.NewError(rotation.ClassDependency, "build-document", "encoding the new document failed", err)
	}
	if n := len(resp.Value); n > sizeWarning {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the document is %d bytes of Secrets Manager's 65536 with %d retired keys: rotate less often, shorten JWT_MAX_TOKEN_LIFETIME, or use ES256/EdDSA (smaller keys)", n, len(next.Retired)))
	}
	return resp, nil
}

// retiredByPromotionOf reports whether r is the key that cur's promotion
// retired: the createSecret that built cur stamped the key it made active
// (ActivatedAt) and the key it retired (RetiredAt) with the same time.
func retiredByPromotionOf(cur *jwks.Document, r jwks.RetiredKey) bool {
	return cur.Active != nil && !cur.Active.ActivatedAt.IsZero() && r.RetiredAt.Equal(cur.Active.ActivatedAt)
}

// PublicToken is the ClientRequestToken setSecret writes the public-JWKS
// secret with: derived from the rotation token, so a retried setSecret
// writes the same version.
func PublicToken(rotationToken string) string {
	sum := sha256.Sum256([]byte("jwtrotate public-jwks\x00" + rotationToken))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Set makes the pending JWK Set visible to verifiers that read the public
// JWKS secret (when configured). Verifiers that read the signing-key secret
// see it when finishSecret promotes the version. Publishing early is safe:
// the pending set holds the key that signs now (as retired) and the one that
// signs next, so it removes no key that signs — except in an emergency
// re-key, where dropping the leaked keys at once is the point.
func (s *Strategy) Set(ctx context.Context, req *rotation.SetRequest) (*rotation.SetResponse, error) {
	pend, err := parse("parse-pending", "AWSPENDING", req.Pending.Value.Bytes())
	if err != nil {
		return nil, err
	}
	if pend.Bootstrap() {
		return nil, inputErr("parse-pending", "the AWSPENDING value has no keys", nil)
	}
	resp := &rotation.SetResponse{}
	if s.cfg.PublicJWKSSecretARN == "" {
		return resp, nil
	}
	// Publishing early is safe only because the pending set keeps every key
	// that can sign now; check it rather than trust it.
	cur, err := parse("parse-current", "AWSCURRENT", req.Current.Value.Bytes())
	if err != nil {
		return nil, err
	}
	if !cur.Bootstrap() && !isRekey(cur, pend) {
		for _, kid := range []string{cur.Active.KID, cur.Next.KID} {
			if !pend.HasKID(kid) {
				return nil, inputErr("verify", "the pending JWK Set lacks kid "+kid+", which signs now or next; not publishing it", nil)
			}
		}
	}
	set, err := json.Marshal(pend.JWKS)
	if err != nil {
		return nil, rotation.NewError(rotation.ClassDependency, "encode-jwks", "encoding the JWK Set failed", err)
	}
	if err := req.Store.PutSecret(ctx, s.cfg.PublicJWKSSecretARN, PublicToken(req.Token), set); err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException" {
			return nil, rotation.NewError(rotation.ClassConfiguration, "PutSecretValue", "JWT_PUBLIC_JWKS_SECRET_ARN names a secret that does not exist or that the function may not see: create it (any value) or unset the variable", err)
		}
		return nil, err
	}
	resp.Details = map[string]string{"publicJwksSecret": s.cfg.PublicJWKSSecretARN}
	return resp, nil
}

// probe signs a short-lived token with key and verifies it with the
// independent consumer kf, pinned to alg.
func probe(key crypto.Signer, k *jwks.SigningKey, kf keyfunc.Keyfunc, secretName string, now time.Time) error {
	method, err := jwks.SigningMethod(k.Alg)
	if err != nil {
		return err
	}
	claims := jwt.RegisteredClaims{
		Issuer: "jwtrotate-probe", Subject: secretName, Audience: jwt.ClaimStrings{"jwtrotate-probe"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = k.KID
	signed, err := t.SignedString(key)
	if err != nil {
		return fmt.Errorf("signing a probe token with %s failed: %w", k.KID, err)
	}
	return verify(signed, k.Alg, kf, now)
}

func verify(signed, alg string, kf keyfunc.Keyfunc, now time.Time) error {
	_, err := jwt.ParseWithClaims(signed, &jwt.RegisteredClaims{}, kf.Keyfunc,
		jwt.WithValidMethods([]string{alg}), jwt.WithExpirationRequired(), jwt.WithAudience("jwtrotate-probe"),
		jwt.WithTimeFunc(func() time.Time { return now }))
	return err
}

// consumer builds the independent JWKS consumer (keyfunc over jwkset) from
// the JWK Set JSON, without HTTP.
// It also checks, through that library's own model, that no key in the set
// carries private members.
func consumer(set *jwks.Set) (keyfunc.Keyfunc, error) {
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	var m jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for _, k := range m.Keys {
		if k.D != "" || k.P != "" || k.Q != "" || k.DP != "" || k.DQ != "" || k.QI != "" || len(k.OTH) > 0 || k.K != "" {
			return nil, fmt.Errorf("the key with kid %q has private members", k.KID)
		}
	}
	return keyfunc.NewJWKSetJSON(raw)
}

// Test proves the pending document: both of its private keys open and are
// the keys their kids name; a token each signs verifies against the pending
// JWK Set with an independent consumer; a token the current active key
// signs still verifies against it (in an emergency re-key: no longer does);
// the set holds public keys only; the public-JWKS secret, when configured,
// holds the pending set. In a configuration test it proves the current
// document the same way (or, for a new secret, that the KMS key seals and
// opens).
func (s *Strategy) Test(ctx context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	which := "AWSPENDING"
	if req.ConfigTest {
		which = "AWSCURRENT"
	}
	pend, err := parse("parse-pending", which, req.Pending.Value.Bytes())
	if err != nil {
		return nil, err
	}
	name := req.Secret.Name
	now := req.Now
	resp := &rotation.TestResponse{}
	if pend.Bootstrap() {
		if !req.ConfigTest {
			return nil, inputErr("parse-pending", "the AWSPENDING value has no keys", nil)
		}
		// A new secret: prove the KMS key seals and opens under this
		// secret's context.
		alg := pend.Algorithm
		if alg == "" {
			alg = s.cfg.Algorithm
		}
		k, err := s.newKey(ctx, name, alg, stamp(now))
		if err != nil {
			return nil, err
		}
		if _, err := jwks.Open(ctx, s.sealer, name, k); err != nil {
			return nil, sealErr("kms:Decrypt", "opening a freshly sealed test key", err)
		}
		resp.Details = map[string]string{"configTest": "new secret: the KMS key seals and opens"}
		return resp, nil
	}
	kf, err := consumer(pend.JWKS)
	if err != nil {
		return nil, inputErr("jwks", "the "+which+" JWK Set does not load into an independent JWKS consumer", err)
	}
	for _, sk := range []struct {
		role string
		k    *jwks.SigningKey
	}{{"active", pend.Active}, {"next", pend.Next}} {
		key, err := jwks.Open(ctx, s.sealer, name, sk.k)
		if err != nil {
			return nil, sealErr("kms:Decrypt", "opening the "+which+" "+sk.role+" key "+sk.k.KID, err)
		}
		if err := probe(key, sk.k, kf, name, now); err != nil {
			return nil, rotation.NewError(rotation.ClassInput, "verify", "a token signed by the "+which+" "+sk.role+" key "+sk.k.KID+" does not verify against the "+which+" JWK Set", err)
		}
	}
	resp.Details = map[string]string{"activeKid": pend.Active.KID, "nextKid": pend.Next.KID}
	if req.ConfigTest {
		resp.Details["configTest"] = "the current keys open and verify"
		return resp, nil
	}
	cur, err := parse("parse-current", "AWSCURRENT", req.Current.Value.Bytes())
	if err != nil {
		return nil, err
	}
	if !cur.Bootstrap() {
		if isRekey(cur, pend) {
			for _, kid := range []string{cur.Active.KID, cur.Next.KID} {
				if pend.HasKID(kid) {
					return nil, inputErr("verify", "emergency re-key: the leaked kid "+kid+" is still in the pending JWK Set", nil)
				}
			}
		} else {
			key, err := jwks.Open(ctx, s.sealer, name, cur.Active)
			if err != nil {
				return nil, sealErr("kms:Decrypt", "opening the AWSCURRENT active key "+cur.Active.KID, err)
			}
			if err := probe(key, cur.Active, kf, name, now); err != nil {
				return nil, rotation.NewError(rotation.ClassInput, "verify", "a token signed by the current active key "+cur.Active.KID+" does not verify against the pending JWK Set: outstanding tokens would break", err)
			}
			if !pend.HasKID(cur.Next.KID) || pend.Active.KID != cur.Next.KID {
				return nil, inputErr("verify", "the pending active key is not the current next key", nil)
			}
		}
	}
	if s.cfg.PublicJWKSSecretARN != "" {
		v, err := req.Store.GetSecret(ctx, s.cfg.PublicJWKSSecretARN, PublicToken(req.Token), "")
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, rotation.NewError(rotation.ClassState, "GetSecretValue", "the public JWKS secret has no version written by this rotation's setSecret", nil)
		}
		var set jwks.Set
		if err := json.Unmarshal(v.Value.Bytes(), &set); err != nil {
			return nil, inputErr("verify", "the public JWKS secret does not hold a JWK Set", nil)
		}
		if _, err := jwks.ParseSet(v.Value.Bytes()); err != nil {
			return nil, inputErr("verify", "the public JWKS secret's set is invalid", err)
		}
		if !slices.Equal(kids(&set), kids(pend.JWKS)) {
			return nil, rotation.NewError(rotation.ClassState, "verify", "the public JWKS secret's set differs from the pending set", nil)
		}
	}
	return resp, nil
}

// isRekey reports whether pend was made by an emergency re-key of cur.
func isRekey(cur, pend *jwks.Document) bool {
	return pend.EmergencyRekey != nil && (cur.EmergencyRekey == nil || cur.EmergencyRekey.Nonce != pend.EmergencyRekey.Nonce)
}

func kids(s *jwks.Set) []string {
	var out []string
	for _, raw := range s.Keys {
		var m struct {
			KID string `json:"kid"`
		}
		_ = json.Unmarshal(raw, &m)
		out = append(out, m.KID)
	}
	slices.Sort(out)
	return out
}
