// Package awscall owns the operator tool's direct calls to the two AWS APIs
// it uses besides Secrets Manager: Lambda's Invoke (to run a rotation step)
// and SQS's ReceiveMessage / DeleteMessage (to follow notifications). Each
// is one HTTPS request signed with Signature Version 4 by the SDK's signer,
// with the SDK's credential chain and region. The SDK's generated Lambda and
// SQS clients would do the same and add about 1.6 MB of generated code and
// start-up tables to a tool that makes three calls, which is why the tool
// does not link them.
//
// Endpoints: an explicit endpoint (a flag, AWS_ENDPOINT_URL_<SERVICE> or
// AWS_ENDPOINT_URL, in that order) wins; else the service's regional
// endpoint in the region's partition (amazonaws.com, amazonaws.com.cn for
// cn-*). For SQS the queue URL's own host is the regional endpoint.
package awscall

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// maxBody is the most of a response body read: Lambda's synchronous
// response limit is 6 MB.
const maxBody = 7 << 20

// client signs and sends requests to one service.
type client struct {
	cfg     aws.Config
	service string // signing name: "lambda", "sqs"
	http    aws.HTTPClient
	signer  *v4.Signer
}

// newClient uses cfg's HTTP client (the SDK's, with its proxy, TLS and
// AWS_CA_BUNDLE settings) when it has one.
func newClient(cfg aws.Config, service string) client {
	var hc aws.HTTPClient = http.DefaultClient
	if cfg.HTTPClient != nil {
		hc = cfg.HTTPClient
	}
	return client{cfg: cfg, service: service, http: hc, signer: v4.NewSigner()}
}

// explicitEndpoint is the endpoint configured for the service, or "".
func explicitEndpoint(cfg aws.Config, envName, flag string) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv("AWS_ENDPOINT_URL_" + envName); v != "" {
		return v
	}
	return aws.ToString(cfg.BaseEndpoint)
}

// regional is the service's regional endpoint.
func regional(service, region string) string {
	dns := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		dns = "amazonaws.com.cn"
	}
	return "https://" + service + "." + region + "." + dns
}

// response is a completed call.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one signed request and reads the response. Throttling and the
// transient 5xx statuses are retried, three attempts in all: every call
// made here is safe to repeat (rotation steps are idempotent by the
// rotation contract; receiving and deleting messages are too).
func (c client) do(ctx context.Context, method, url string, header http.Header, body []byte) (*response, error) {
	if c.cfg.Credentials == nil {
		return nil, fmt.Errorf("no AWS credentials configured")
	}
	if c.cfg.Region == "" {
		return nil, fmt.Errorf("no AWS region: set AWS_REGION or pass --region")
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	var last *response
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 200 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		creds, err := c.cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		if err := c.signer.SignHTTP(ctx, creds, req, hash, c.service, c.cfg.Region, time.Now()); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		last = &response{status: resp.StatusCode, header: resp.Header, body: raw}
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			continue
		}
		return last, nil
	}
	return last, nil
}
