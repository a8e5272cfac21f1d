package apikeystrategy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Registration protocol (docs/apikey.md): POST RegisterURL with a verifier
// document holding only the new key's record; headers Idempotency-Key (the
// rotation's token: the receiver must store the first registration under it
// and answer a repeat with success and no second registration) and
// RegistrationSignatureHeader (t=<unix>,v1=<hex HMAC-SHA-256 of "t.body">
// under the key in APIKEY_REGISTER_HMAC_SECRET_ARN).
const (
	IdempotencyKeyHeader        = "Idempotency-Key"
	RegistrationSignatureHeader = "Rotation-Signature"
	maxResponseBytes            = 4 << 10
	// minRegisterKeyLen is the least length of the registration signing key.
	minRegisterKeyLen = 32
)

func (s *Strategy) register(ctx context.Context, st rotation.Store, token string, now time.Time, doc *apikey.VerifierDoc, rec *apikey.Record) error {
	if rec == nil {
		return rotation.NewError(rotation.ClassState, "http:register", "the new key's record is missing from the verifier document", nil)
	}
	hk, err := st.GetSecret(ctx, s.cfg.RegisterHMACSecretID, "", rotation.StageCurrent)
	if err != nil {
		return err
	}
	if hk == nil || len(hk.Value) < minRegisterKeyLen {
		return configErr(EnvRegisterHMACSecretARN, fmt.Sprintf("must name a secret whose value has at least %d bytes", minRegisterKeyLen), nil)
	}
	one := &apikey.VerifierDoc{Kind: doc.Kind, Records: []apikey.Record{*rec}}
	if rec.Alg == apikey.AlgHMACSHA256 {
		one.PepperFingerprint = doc.PepperFingerprint
	}
	body, err := one.Encode()
	if err != nil {
		return rotation.NewError(rotation.ClassDependency, "encode", "the registration could not be encoded", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(IdempotencyKeyHeader, token)
	h.Set(RegistrationSignatureHeader, apikey.SignatureHeader(hk.Value.Bytes(), now, body))
	return s.do(ctx, "http:register", http.MethodPost, s.cfg.RegisterURL, h, body)
}

// callTest presents the pending key to the test endpoint: as a bearer token
// for an API key, as a signed probe for a webhook key.
func (s *Strategy) callTest(ctx context.Context, pend *apikey.CallerSecret, now time.Time) error {
	h := http.Header{}
	if pend.Kind == apikey.KindWebhook {
		body := []byte(`{"type":"rotation.test","keyId":"` + pend.KeyID + `","time":` + strconv.FormatInt(now.Unix(), 10) + `}`)
		h.Set("Content-Type", "application/json")
		h.Set(apikey.SignatureHeaderName, apikey.SignWebhook(pend.Key, now, body))
		return s.do(ctx, "http:test", http.MethodPost, s.cfg.TestURL, h, body)
	}
	h.Set("Authorization", "Bearer "+pend.Key.Reveal())
	return s.do(ctx, "http:test", http.MethodGet, s.cfg.TestURL, h, nil)
}

// do makes one HTTPS call through rotation.Call and maps a non-2xx answer to
// a classified error. Neither the request nor the response body reaches an
// error: they may hold a key.
func (s *Strategy) do(ctx context.Context, op, method, url string, h http.Header, body []byte) error {
	var status int
	err := rotation.Call(ctx, op, func(ctx context.Context) error {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return err
		}
		req.Header = h.Clone()
		resp, err := s.http.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		resp.Body.Close()
		status = resp.StatusCode
		return nil
	})
	if err != nil {
		return rotation.Classify(op, err)
	}
	if status >= 200 && status < 300 {
		return nil
	}
	msg := fmt.Sprintf("%s %s answered HTTP %d", method, url, status)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		if op == "http:register" {
			return rotation.NewError(rotation.ClassAuthentication, op, msg+": the endpoint refused the signed registration; check APIKEY_REGISTER_HMAC_SECRET_ARN", nil)
		}
		return rotation.NewError(rotation.ClassAuthentication, op, msg+": the endpoint refused the new key; it does not know the key yet (check the verifier secret or registration it reads)", nil)
	case status == http.StatusConflict || status == http.StatusUnprocessableEntity:
		return rotation.NewError(rotation.ClassState, op, msg+": the endpoint holds a different request under this rotation's idempotency key", nil)
	case status == http.StatusTooManyRequests:
		return rotation.NewError(rotation.ClassThrottling, op, msg, nil)
	case status >= 500:
		return rotation.NewError(rotation.ClassDependency, op, msg, nil)
	case status >= 300 && status < 400:
		return rotation.NewError(rotation.ClassConfiguration, op, msg+": redirects are not followed; configure the final URL", nil)
	}
	return rotation.NewError(rotation.ClassConfiguration, op, msg+": check the URL", nil)
}

// newHTTPClient is the default client for the registration and test calls:
// TLS 1.2 or later, the system roots plus caPEM, the proxy from the
// environment. New adds the redirect policy.
func newHTTPClient(caPEM []byte) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, configErr(EnvCAFile, "holds no PEM certificate", nil)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.Proxy = http.ProxyFromEnvironment
	return &http.Client{Transport: tr}, nil
}

// refuseRedirect is the redirect policy of every client the strategy uses:
// a redirect could carry a key or a registration elsewhere, so the 3xx
// answer is returned as it is (and do reports it).
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
