// Package wirecount is a reverse proxy in front of an AWS endpoint (moto in
// tests and benchmarks) that counts every HTTP request clients send through
// it, by service and operation as the SDK put them on the wire, retries
// included. It is how cmd/rotbench counts a function's AWS calls and how the
// consumer libraries' tests count Secrets Manager reads.
package wirecount

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Counter is the proxy; point clients at URL.
type Counter struct {
	URL string // http://127.0.0.1:PORT

	srv *http.Server

	mu     sync.Mutex
	counts map[string]int
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Counter, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &Counter{URL: "http://" + ln.Addr().String(), counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 0}
	w.srv = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count(Op(r))
		rp.ServeHTTP(rw, r)
	})}
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

// Op names a request "service:Operation". The JSON protocols used by Secrets
// Manager and KMS carry the operation in X-Amz-Target
// ("secretsmanager.GetSecretValue", "TrentService.Decrypt").
func Op(r *http.Request) string {
	t := r.Header.Get("X-Amz-Target")
	svc, op, ok := strings.Cut(t, ".")
	if !ok {
		return "other:" + r.Method + " " + r.URL.Path
	}
	switch svc {
	case "TrentService":
		svc = "kms"
	default:
		svc = strings.ToLower(svc)
	}
	return svc + ":" + op
}

func (w *Counter) count(op string) {
	w.mu.Lock()
	w.counts[op]++
	w.mu.Unlock()
}

// Take returns the counts since the last Take and starts again from zero.
func (w *Counter) Take() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.counts
	w.counts = map[string]int{}
	return c
}

// Stop closes the proxy.
func (w *Counter) Stop() { _ = w.srv.Close() }

// SumPrefix adds the counts of ops starting with prefix.
func SumPrefix(m map[string]int, prefix string) int {
	n := 0
	for op, c := range m {
		if strings.HasPrefix(op, prefix) {
			n += c
		}
	}
	return n
}
