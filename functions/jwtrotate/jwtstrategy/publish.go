package jwtstrategy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/aws/smithy-go"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// PublicToken is the ClientRequestToken setSecret writes the public-JWKS
// secret with, and the version id testSecret reads it back by: a UUID
// derived from clientRequestToken, the rotation's ClientRequestToken (the
// pending version's id, rotation.SetRequest.Token), so a retried setSecret
// writes the same version. It is not derived from the event's RotationToken,
// which the engine keeps out of strategies.
func PublicToken(clientRequestToken string) string {
	sum := sha256.Sum256([]byte("jwtrotate public-jwks\x00" + clientRequestToken))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Set makes the pending JWK Set visible to verifiers that read the public
// JWKS secret (when configured). Verifiers that read the signing-key secret
// see it when finishSecret promotes the version. Publishing early is safe:
// the pending set holds the key that signs now (as retired) and the one that
// signs next (as active), so it removes no key that signs — Set checks this
// before it writes — except in an emergency re-key, where dropping the
// leaked keys at once is the point.
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
