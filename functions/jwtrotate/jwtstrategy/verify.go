package jwtstrategy

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

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
// JWK Set with an independent consumer, which also refuses a set with
// private members; a token the current active key signs still verifies
// against it and the pending active key is the current next key (in an
// emergency re-key instead: the leaked kids are absent from the set); and
// the public-JWKS secret, when configured, holds a valid set with the
// pending set's kids in the version setSecret wrote (PublicToken). In a
// configuration test it proves the current document's keys the same way
// (or, for a new secret, that the KMS key seals and opens).
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
		got, want := set.KIDs(), pend.JWKS.KIDs()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			return nil, rotation.NewError(rotation.ClassState, "verify", "the public JWKS secret's set differs from the pending set", nil)
		}
	}
	return resp, nil
}
