package awscall_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rotation-suite/rotation/internal/awscall"
)

func testConfig() aws.Config {
	return aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret-key-example", "")}
}

// Invoke must send Lambda's REST request (path, invocation type, payload),
// signed for the lambda service in the configured region, and report the
// function's own error as a result, not as a failed call.
func TestLambdaInvokeSendsASignedRequestAndReportsTheFunctionError(t *testing.T) {
	var gotPath, gotAuth, gotType, gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotPath, gotAuth, gotType, gotBody = r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("X-Amz-Invocation-Type"), string(b)
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_, _ = io.WriteString(w, `{"errorType":"x","errorMessage":"boom"}`)
	}))
	defer srv.Close()
	fn := "arn:aws:lambda:eu-west-1:123456789012:function:dbrotate"
	res, err := awscall.NewLambda(testConfig(), srv.URL).Invoke(context.Background(), fn, []byte(`{"Step":"testSecret"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "Unhandled" || !strings.Contains(string(res.Payload), "boom") {
		t.Fatalf("result %+v", res)
	}
	if gotPath != "/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:dbrotate/invocations" && gotPath != "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Adbrotate/invocations" {
		t.Fatalf("path %s", gotPath)
	}
	if !strings.Contains(gotAuth, "AWS4-HMAC-SHA256") || !strings.Contains(gotAuth, "/eu-west-1/lambda/aws4_request") {
		t.Fatalf("Authorization %q: not signed for lambda in eu-west-1", gotAuth)
	}
	if gotType != "RequestResponse" || gotBody != `{"Step":"testSecret"}` {
		t.Fatalf("invocation type %q, body %q", gotType, gotBody)
	}
}

// An API error (the function did not run) is an error naming Lambda's code
// and message; throttling is retried.
func TestLambdaInvokeAPIErrorNamesTheCodeAndThrottlingIsRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException:http://internal.amazon.com/coral/com.amazonaws.awslambda/")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"Type":"User","message":"Rate exceeded"}`)
			return
		}
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.awslambda/")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"Type":"User","Message":"Function not found: dbrotate"}`)
	}))
	defer srv.Close()
	_, err := awscall.NewLambda(testConfig(), srv.URL).Invoke(context.Background(), "dbrotate", []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException: Function not found: dbrotate") {
		t.Fatalf("want the not-found code and message, got %v", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls, want the throttled one retried once", calls.Load())
	}
}

func TestLambdaEndpointDefaultsToTheRegionsPartition(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", "")
	for region, want := range map[string]string{"eu-west-1": "https://lambda.eu-west-1.amazonaws.com", "cn-north-1": "https://lambda.cn-north-1.amazonaws.com.cn"} {
		cfg := testConfig()
		cfg.Region = region
		if got := awscall.NewLambda(cfg, "").Endpoint(); got != want {
			t.Errorf("%s: %s, want %s", region, got, want)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9001")
	if got := awscall.NewLambda(testConfig(), "").Endpoint(); got != "http://127.0.0.1:9001" {
		t.Errorf("AWS_ENDPOINT_URL_LAMBDA ignored: %s", got)
	}
}
