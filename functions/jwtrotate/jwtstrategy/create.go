package jwtstrategy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// sizeWarning is the document size above which Create warns (Secrets
// Manager's limit is 65536 bytes).
const sizeWarning = 48 << 10

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
		r.RemoveAfter = s.removeAfter(cur, r, now)
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
