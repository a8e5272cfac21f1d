package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// wireCounter is a reverse proxy in front of moto that counts every HTTP
// request a function sends to the AWS APIs, by service and operation, as the
// SDK put it on the wire (retries included). The functions' clients point
// at it; the driver (which plays Secrets Manager itself) talks to moto
// directly, so its RotateSecret, DescribeSecret and label clean-up are not
// counted as the function's calls.
type wireCounter struct {
	URL string // http://127.0.0.1:PORT

	ln  net.Listener
	srv *http.Server

	mu     sync.Mutex
	counts map[string]int
}

func startWireCounter(target string) (*wireCounter, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &wireCounter{URL: "http://" + ln.Addr().String(), ln: ln, counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 0}
	w.srv = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count(wireOp(r))
		rp.ServeHTTP(rw, r)
	})}
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

// wireOp names a request "service:Operation". The JSON protocols used by
// Secrets Manager and KMS carry the operation in X-Amz-Target
// ("secretsmanager.GetSecretValue", "TrentService.Decrypt").
func wireOp(r *http.Request) string {
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

func (w *wireCounter) count(op string) {
	w.mu.Lock()
	w.counts[op]++
	w.mu.Unlock()
}

// take returns the counts since the last take and starts again from zero.
func (w *wireCounter) take() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.counts
	w.counts = map[string]int{}
	return c
}

func (w *wireCounter) stop() { _ = w.srv.Close() }

// sumPrefix adds the counts of ops starting with prefix.
func sumPrefix(m map[string]int, prefix string) int {
	n := 0
	for op, c := range m {
		if strings.HasPrefix(op, prefix) {
			n += c
		}
	}
	return n
}

// sdkCounter counts at the SDK's middleware: a Finalize-step middleware
// after the retry middleware sees every attempt of every operation made by
// the clients built from the configuration it is added to.
type sdkCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newSDKCounter() *sdkCounter { return &sdkCounter{counts: map[string]int{}} }

// apiOption adds the counting middleware to a client's stack.
func (c *sdkCounter) apiOption(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("rotbenchCount",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			svc := strings.ToLower(strings.ReplaceAll(awsmiddleware.GetServiceID(ctx), " ", ""))
			c.mu.Lock()
			c.counts[svc+":"+awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *sdkCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.counts
	c.counts = map[string]int{}
	return m
}
