package explore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rotation-suite/rotation/functions/apikeyrotate/apikeystrategy"
	"github.com/rotation-suite/rotation/internal/explore"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// apikeyOverlap is the exploration's overlap: three actions long.
const apikeyOverlap = 2 * time.Minute

// issuedKey is what the subject remembers of a key that was AWSCURRENT.
type issuedKey struct {
	key     apikey.Key
	retired time.Time // when it stopped being AWSCURRENT; zero while it is
}

// apikeySubject explores the API-key strategy with two caller secrets that
// share one verifier secret. Its invariants: each caller's AWSCURRENT key
// verifies against the verifier secret's AWSCURRENT records; a key that
// stopped being AWSCURRENT verifies for the overlap after that (the notAfter
// its finishSecret promises), however many rotations follow (docs/apikey.md:
// every issued key verifies until its notAfter; only the emergency tag, not
// in the alphabet, revokes earlier).
type apikeySubject struct {
	kind        string // apikey.KindAPIKey or apikey.KindWebhook
	verifierARN string
	keys        [2]map[string]*issuedKey
}

func newAPIKey() explore.Subject {
	return &apikeySubject{kind: apikey.KindAPIKey, keys: [2]map[string]*issuedKey{{}, {}}}
}

// newWebhook is the same over webhook signing keys: the verifier holds the
// keys themselves, and a key verifies by a signature it makes.
func newWebhook() explore.Subject {
	return &apikeySubject{kind: apikey.KindWebhook, keys: [2]map[string]*issuedKey{{}, {}}}
}

func (s *apikeySubject) Setup(ctx context.Context, w *explore.World) ([]string, error) {
	created := w.Clock.Now().Add(-time.Hour)
	var arns []string
	doc := &apikey.VerifierDoc{Kind: s.kind}
	prefix := apikeystrategy.DefaultAPIKeyPrefix
	if s.kind == apikey.KindWebhook {
		prefix = apikeystrategy.DefaultWebhookPrefix
	}
	for i := range 2 {
		k, err := apikey.GenerateKey(prefix)
		if err != nil {
			return nil, err
		}
		p, _ := apikey.ParseKey(k.Reveal())
		c := &apikey.CallerSecret{Kind: s.kind, KeyID: p.KeyID, Key: k, CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)}
		b, err := c.Encode()
		if err != nil {
			return nil, err
		}
		arn, err := w.CreateSecret(ctx, fmt.Sprintf("explore/%s-caller-%d", s.kind, i), b)
		if err != nil {
			return nil, err
		}
		alg := apikey.AlgSHA256
		if s.kind == apikey.KindWebhook {
			alg = ""
		}
		r, err := apikey.NewRecord(c, alg, nil, apikey.StatusActive)
		if err != nil {
			return nil, err
		}
		r.Owner = apikey.OwnerID(arn)
		doc.Records = append(doc.Records, r)
		arns = append(arns, arn)
	}
	b, err := doc.Encode()
	if err != nil {
		return nil, err
	}
	s.verifierARN, err = w.CreateSecret(ctx, "explore/verifier", b)
	return arns, err
}

func (s *apikeySubject) Strategy(*explore.World) (rotation.Strategy, error) {
	return apikeystrategy.New(apikeystrategy.Config{Kind: s.kind, Overlap: apikeyOverlap, MaxAge: 90 * 24 * time.Hour, VerifierSecretID: s.verifierARN}, apikeystrategy.Deps{})
}

// verify checks key against the verifier secret's AWSCURRENT records now.
func (s *apikeySubject) verify(ctx context.Context, w *explore.World, key apikey.Key) error {
	_, v := w.CurrentOf(ctx, s.verifierARN)
	doc, err := apikey.ParseVerifier([]byte(v))
	if err != nil {
		return fmt.Errorf("the verifier secret: %w", err)
	}
	ring, err := apikey.NewKeyring(doc, nil)
	if err != nil {
		return err
	}
	now := w.Clock.Now()
	if s.kind == apikey.KindWebhook {
		body := []byte(`{"type":"explore.probe"}`)
		_, err = ring.VerifySignature(apikey.SignWebhook(key, now, body), body, now, apikey.DefaultTolerance)
		return err
	}
	_, err = ring.Verify(key.Reveal(), now)
	return err
}

func (s *apikeySubject) Accepts(ctx context.Context, w *explore.World, _ int, value []byte) error {
	c, err := apikey.ParseCaller(value)
	if err != nil {
		return err
	}
	return s.verify(ctx, w, c.Key)
}

func (s *apikeySubject) Check(ctx context.Context, w *explore.World) error {
	now := w.Clock.Now()
	for i := range 2 {
		_, v := w.Current(ctx, i)
		cur, err := apikey.ParseCaller([]byte(v))
		if err != nil {
			return explore.Violationf("apikey-caller", "caller #%d: AWSCURRENT is not a caller secret: %v", i, err)
		}
		keys := s.keys[i]
		if keys[cur.KeyID] == nil {
			keys[cur.KeyID] = &issuedKey{key: cur.Key}
			// The key it replaced is AWSPREVIOUS's, which may have been
			// AWSCURRENT only inside the last action.
			if pv := w.Previous(ctx, i); pv != "" {
				if pc, err := apikey.ParseCaller([]byte(pv)); err == nil && pc.Issued() && keys[pc.KeyID] == nil {
					keys[pc.KeyID] = &issuedKey{key: pc.Key}
				}
			}
		}
		keys[cur.KeyID].retired = time.Time{}
		for id, k := range keys {
			if id != cur.KeyID && k.retired.IsZero() {
				k.retired = now
			}
		}
		for id, k := range keys {
			switch {
			case id == cur.KeyID:
				if err := s.verify(ctx, w, k.key); err != nil {
					return explore.Violationf("apikey-current", "caller #%d: the AWSCURRENT key %s does not verify: %v", i, id, err)
				}
			case now.Before(k.retired.Add(apikeyOverlap)):
				if err := s.verify(ctx, w, k.key); err != nil {
					return explore.Violationf("apikey-overlap", "caller #%d: key %s, replaced at %s, does not verify at %s although its overlap runs until %s: %v",
						i, id, k.retired.Format(time.TimeOnly), now.Format(time.TimeOnly), k.retired.Add(apikeyOverlap).Format(time.TimeOnly), err)
				}
			}
		}
	}
	return nil
}
