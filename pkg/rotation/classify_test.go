package rotation_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// The contract's "errors that matter" each map to a class an operator can act on.
func TestServiceAndNetworkErrorsAreClassifiedForTheOperator(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	for _, tc := range []struct {
		name      string
		err       error
		class     rotation.Class
		retryable bool
	}{
		{"IAM or resource policy", api("AccessDeniedException"), rotation.ClassPermission, false},
		{"KMS key disabled or no kms:Decrypt", api("DecryptionFailure"), rotation.ClassPermission, false},
		{"KMS key for encryption", api("EncryptionFailure"), rotation.ClassPermission, false},
		{"throttled after the SDK's retries", api("ThrottlingException"), rotation.ClassThrottling, true},
		{"too many versions or labels", api("LimitExceededException"), rotation.ClassThrottling, true},
		{"secret scheduled for deletion / rotation in progress", api("InvalidRequestException"), rotation.ClassState, false},
		{"label or RemoveFromVersionId mismatch", api("InvalidParameterException"), rotation.ClassInput, false},
		{"token reused with a different value", api("ResourceExistsException"), rotation.ClassDependency, true},
		{"service failure", api("InternalServiceError"), rotation.ClassDependency, true},
		{"unreachable endpoint", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, rotation.ClassNetwork, true},
		{"certificate from an unknown authority", x509.UnknownAuthorityError{}, rotation.ClassTLS, false},
		{"deadline", context.DeadlineExceeded, rotation.ClassTimeout, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rotation.Classify("Op", tc.err)
			var re *rotation.Error
			if !errors.As(err, &re) {
				t.Fatalf("not a *rotation.Error: %T", err)
			}
			if re.Class != tc.class || re.Retryable != tc.retryable {
				t.Fatalf("got class %s retryable %v, want %s %v", re.Class, re.Retryable, tc.class, tc.retryable)
			}
			if !errors.Is(err, tc.err) && !errors.As(err, new(smithy.APIError)) {
				t.Fatal("the cause is not kept")
			}
		})
	}
	if rotation.Classify("Op", nil) != nil {
		t.Fatal("Classify(nil) must be nil")
	}
}
