package apikeystrategy_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/pkg/apikey"
)

type atomicInt struct{ atomic.Int64 }

func (a *atomicInt) Load() int64 { return a.Int64.Load() }

func (c *countingSource) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.n.Add(1)
	return c.SecretSource.GetSecretValue(ctx, in, opts...)
}

// fakeCaller encodes a caller secret whose key may be malformed (Encode on
// apikey.CallerSecret does not check the key).
type fakeCaller struct{ c apikey.CallerSecret }

func (f *fakeCaller) encode() (string, error) {
	b, err := f.c.Encode()
	return string(b), err
}

func newGet(url, key string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return req, nil
}

var _ = time.Second
