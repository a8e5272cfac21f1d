package envelope

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// throttlingProxy answers the first `throttle` GenerateDataKey requests with
// KMS's ThrottlingException and forwards everything else to moto.
func throttlingProxy(t *testing.T, throttle int64) (*httptest.Server, *atomic.Int64) {
	m := testenv.SharedMoto(t)
	target, _ := url.Parse(m.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "TrentService.GenerateDataKey" {
			if seen.Add(1) <= throttle {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func throttledEnvelope(t *testing.T, endpoint string) *Envelope {
	cfg, err := testenv.SharedMoto(t).AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	real := &countingKMS{Client: kms.NewFromConfig(cfg)}
	arn := newKey(t, real, "")
	client := kms.NewFromConfig(cfg, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		// The SDK's standard retryer (3 attempts) with a short backoff so the
		// test is quick; which errors are retried is the SDK's decision.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	})
	p, err := NewKMSProvider(context.Background(), KMSConfig{Client: client, KeyID: arn})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := New(Config{Provider: p})
	return e
}

func TestKMSThrottlingIsRetriedByTheSDKRetryer(t *testing.T) {
	srv, seen := throttlingProxy(t, 2)
	e := throttledEnvelope(t, srv.URL)
	ctx, calls := counted()
	if _, err := e.Encrypt(ctx, []byte("x"), Context{"a": "b"}); err != nil {
		t.Fatalf("two throttles then success: %v", err)
	}
	if seen.Load() != 3 || calls.Count("kms:GenerateDataKey") != 1 {
		t.Fatalf("%d HTTP attempts for %d rotation.Call calls, want 3 for 1", seen.Load(), calls.Count("kms:GenerateDataKey"))
	}
}

func TestKMSThrottlingBeyondRetriesIsAThrottlingError(t *testing.T) {
	srv, seen := throttlingProxy(t, 1<<30)
	e := throttledEnvelope(t, srv.URL)
	_, err := e.Encrypt(context.Background(), []byte("x"), Context{"a": "b"})
	wantKind(t, err, ErrProvider, "throttled on every attempt")
	if rotation.ClassOf(err) != rotation.ClassThrottling || !rotation.IsRetryable(err) {
		t.Fatalf("class %s retryable %t: %v", rotation.ClassOf(err), rotation.IsRetryable(err), err)
	}
	if seen.Load() != 3 {
		t.Fatalf("%d attempts, want the retryer's 3", seen.Load())
	}
}
