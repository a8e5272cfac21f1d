package apikeystrategy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

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

// derivedToken is the ClientRequestToken of a verifier-secret version written
// by one step of one rotation on top of one base version: a UUID (version 8)
// from SHA-256 of the rotation's token and the purpose (which names the base),
// so a retried step writes under the same token and never creates another
// version, while a retry over a version someone else wrote meanwhile merges
// into a new one instead of failing on a reused token.
func derivedToken(token, purpose string) string {
	sum := sha256.Sum256([]byte("apikeyrotate/verifier\x00" + purpose + "\x00" + token))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(u)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// encodeVerifier is doc's encoding for a verifier write.
func encodeVerifier(doc *apikey.VerifierDoc) ([]byte, error) {
	b, err := doc.Encode()
	if err != nil {
		return nil, rotation.NewError(rotation.ClassDependency, "encode", "the verifier document could not be encoded", err)
	}
	return b, nil
}
