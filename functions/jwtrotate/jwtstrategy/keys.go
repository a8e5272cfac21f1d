package jwtstrategy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"time"

	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// GenerateKey makes a private key for alg from crypto/rand; rsaBits is the
// RS256 key size and is not used for the other algorithms.
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

// stamp is the clock the documents record: UTC, whole seconds.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// newKey generates a key for alg and seals it under the secret's name
// and the key's kid.
func (s *Strategy) newKey(ctx context.Context, secretName, alg string, now time.Time) (*jwks.SigningKey, error) {
	priv, err := GenerateKey(alg, s.cfg.RSABits)
	if err != nil {
		return nil, rotation.NewError(rotation.ClassDependency, "generate-key", "generating an "+alg+" key failed", err)
	}
	k, err := jwks.Seal(ctx, s.sealer, secretName, priv, alg, now)
	if err != nil {
		return nil, sealErr("kms:GenerateDataKey", "sealing the new private key", err)
	}
	return k, nil
}
