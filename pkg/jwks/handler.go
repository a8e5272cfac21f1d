package jwks

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Handler serves a Verifier's JWK Set (GET and HEAD) as
// application/jwk-set+json with a strong ETag (If-None-Match answers 304)
// and Cache-Control: public, max-age=MaxAge.
type Handler struct {
	Verifier *Verifier
	// MaxAge is what verifiers may cache the set for; 0: 5 minutes. Keep it
	// at most the rotation's JWT_SIGNER_CACHE, so a verifier's cached copy
	// is never older than the time a retired key is kept for.
	MaxAge time.Duration
}

func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	maxAge := h.MaxAge
	if maxAge <= 0 {
		maxAge = 5 * time.Minute
	}
	set := h.Verifier.current(r.Context())
	if set == nil {
		http.Error(w, "the JWK Set is unavailable", http.StatusServiceUnavailable)
		return
	}
	hd := w.Header()
	hd.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(maxAge/time.Second)))
	hd.Set("ETag", set.etag)
	hd.Set("Content-Type", "application/jwk-set+json")
	hd.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(r.Header.Get("If-None-Match"), set.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", fmt.Sprint(len(set.raw)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(set.raw)
}

func etagMatches(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		p := strings.TrimSpace(part)
		if p == "*" || strings.TrimPrefix(p, "W/") == etag {
			return true
		}
	}
	return false
}
