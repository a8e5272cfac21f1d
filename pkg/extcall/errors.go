package extcall

import "errors"

// Class is the kind of a failed call. Each class says what to look at.
type Class string

// The classes. Retryable says whether trying the whole operation again later
// can help.
const (
	ClassInput          Class = "input"          // malformed input: fix the input
	ClassConfiguration  Class = "configuration"  // settings wrong: fix the configuration
	ClassState          Class = "state"          // the resource is not in the state the operation requires
	ClassNetwork        Class = "network"        // unreachable, reset or timed out: check VPC, endpoints, security groups
	ClassTLS            Class = "tls"            // certificate or handshake failure: check the CA bundle and server name
	ClassAuthentication Class = "authentication" // credentials refused
	ClassPermission     Class = "permission"     // IAM, KMS or database privilege missing
	ClassThrottling     Class = "throttling"     // rate limited after the SDK's own retries
	ClassDependency     Class = "dependency"     // a service we depend on failed or answered unexpectedly
	ClassTimeout        Class = "timeout"        // the call ran out of its time budget
)

// RetryableByDefault reports whether failures of class c are usually
// transient.
func RetryableByDefault(c Class) bool {
	switch c {
	case ClassNetwork, ClassThrottling, ClassDependency, ClassTimeout:
		return true
	}
	return false
}

// Error is a classified failure of one call. Its message names no secret;
// Cause keeps the underlying error for errors.Is / errors.As.
type Error struct {
	Class     Class
	Op        string // the call, e.g. "kms:Decrypt"
	Msg       string // actionable
	Retryable bool
	Cause     error
}

// NewError builds a classified error with the class's default retryability.
func NewError(class Class, op, msg string, cause error) *Error {
	return &Error{Class: class, Op: op, Msg: msg, Cause: cause, Retryable: RetryableByDefault(class)}
}

func (e *Error) Error() string {
	s := string(e.Class) + " error"
	if e.Op != "" {
		s += " (" + e.Op + ")"
	}
	s += ": " + e.Msg
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// ClassOf returns the class of the first *Error in err's chain, and false
// when there is none.
func ClassOf(err error) (Class, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Class, true
	}
	return "", false
}
