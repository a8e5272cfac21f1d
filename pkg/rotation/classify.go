package rotation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	"github.com/aws/smithy-go"

	"github.com/rotation-suite/rotation/pkg/extcall"
)

func isAPIError(err error, code string) bool {
	var ae smithy.APIError
	return err != nil && errors.As(err, &ae) && ae.ErrorCode() == code
}

// classifyExternal maps an error from the SDK, the network or a driver to a
// classified *Error with an actionable message. op names the failed call.
func classifyExternal(op string, err error) *Error {
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	var ee *extcall.Error
	if errors.As(err, &ee) {
		return fromExtcall(ee)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
			return newError(ClassPermission, "", op, "the function's role may not make this call; check its IAM policy and the secret's resource policy", err)
		case "EncryptionFailure", "DecryptionFailure", "KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException":
			return newError(ClassPermission, "", op, "KMS refused the secret's key: check the key is enabled and the role has kms:Decrypt / kms:GenerateDataKey on it", err)
		case "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "LimitExceededException":
			e := newError(ClassThrottling, "", op, "rate or quota limit reached after the SDK's retries", err)
			if ae.ErrorCode() == "LimitExceededException" {
				e.Msg = "a Secrets Manager limit was reached (too many versions or labels, or request rate)"
			}
			return e
		case "ResourceNotFoundException":
			return newError(ClassState, "", op, "the secret or version does not exist", err)
		case "InvalidRequestException":
			return newError(ClassState, "", op, "the request is not valid for the secret's state (scheduled for deletion, rotation in progress, or no rotation function)", err)
		case "InvalidParameterException", "ValidationException":
			return newError(ClassInput, "", op, "the service rejected a parameter", err)
		case "InternalServiceError", "InternalFailure", "ServiceUnavailable":
			return newError(ClassDependency, "", op, "the service failed; the rotation will be retried", err)
		}
		return newError(ClassDependency, "", op, "the service answered with an error", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return newError(ClassTimeout, "", op, "the call ran out of time; raise the function timeout or look for a slow dependency", err)
	}
	var ce *tls.CertificateVerificationError
	var he x509.HostnameError
	var ua x509.UnknownAuthorityError
	var rh tls.RecordHeaderError
	if errors.As(err, &ce) || errors.As(err, &he) || errors.As(err, &ua) || errors.As(err, &rh) {
		return newError(ClassTLS, "", op, "the TLS handshake failed: check the CA bundle and the server name", err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return newError(ClassNetwork, "", op, "the endpoint could not be reached: check the VPC route, security groups and VPC endpoints", err)
	}
	return newError(ClassDependency, "", op, "the call failed", err)
}

// Classify is classifyExternal for strategies: it turns a driver, SDK or
// network error into a classified *Error for op. Strategies with better
// knowledge (a SQLSTATE) classify themselves.
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	return classifyExternal(op, err)
}
