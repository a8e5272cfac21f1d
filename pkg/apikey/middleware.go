package apikey

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
)

type keyIDCtx struct{}

// KeyIDFrom returns the key id the middleware authenticated, if any.
func KeyIDFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(keyIDCtx{}).(string)
	return id, ok
}

// APIKeyHeader is the alternative header for a key (besides Authorization: Bearer).
const APIKeyHeader = "X-API-Key"

// PresentedKey extracts a key from "Authorization: Bearer <key>" or the
// X-API-Key header; "" if neither is present.
func PresentedKey(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
			return strings.TrimSpace(a[7:])
		}
		return ""
	}
	return r.Header.Get(APIKeyHeader)
}

// Middleware authenticates every request with an API key verified by v. A
// request without a valid key gets 401 with a generic body (the reason is
// for the server's own log via onReject, never echoed with the key); a
// valid one reaches next with the key id in its context (KeyIDFrom).
// onReject may be nil.
func Middleware(v *Verifier, onReject func(r *http.Request, keyID string, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := PresentedKey(r)
			var id string
			var err error
			if key == "" {
				err = ErrMalformed
			} else {
				id, err = v.Verify(r.Context(), key)
			}
			if err != nil {
				if onReject != nil {
					onReject(r, id, err)
				}
				status := http.StatusUnauthorized
				if errors.Is(err, ErrNoKeyring) {
					status = http.StatusServiceUnavailable
				}
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				http.Error(w, http.StatusText(status), status)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyIDCtx{}, id)))
		})
	}
}

// WebhookMiddleware verifies the signature header (SignatureHeaderName) of
// every request over its body, read up to maxBody bytes, against v's live
// webhook keys; next sees the same body again and the verifying key id in
// the context (KeyIDFrom).
func WebhookMiddleware(v *Verifier, maxBody int64, onReject func(r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			status := http.StatusUnauthorized
			var id string
			if err != nil {
				status = http.StatusRequestEntityTooLarge
			} else {
				id, err = v.VerifySignature(r.Context(), r.Header.Get(SignatureHeaderName), body)
			}
			if err != nil {
				if onReject != nil {
					onReject(r, err)
				}
				http.Error(w, http.StatusText(status), status)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyIDCtx{}, id)))
		})
	}
}
