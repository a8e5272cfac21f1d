package rotation

import (
	"errors"
	"fmt"

	"github.com/rotation-suite/rotation/pkg/extcall"
)

// Class is the kind of a rotation failure. Each class says what to look at.
// It is extcall's class, so that a consumer library (pkg/envelope) classifies
// its dependency's failures with an *extcall.Error the engine understands
// without importing the engine.
type Class = extcall.Class

// The error taxonomy. Operators act on the class; Retryable says whether the
// service's retry of the whole rotation can help.
const (
	ClassInput          = extcall.ClassInput          // malformed event or secret value: fix the input
	ClassConfiguration  = extcall.ClassConfiguration  // environment or secret settings wrong: fix the configuration
	ClassState          = extcall.ClassState          // the secret's versions or labels are not as the step requires
	ClassNetwork        = extcall.ClassNetwork        // unreachable, reset or timed out: check VPC, endpoints, security groups
	ClassTLS            = extcall.ClassTLS            // certificate or handshake failure: check the CA bundle and server name
	ClassAuthentication = extcall.ClassAuthentication // credentials refused
	ClassPermission     = extcall.ClassPermission     // IAM, KMS or database privilege missing
	ClassThrottling     = extcall.ClassThrottling     // rate limited after the SDK's own retries
	ClassDependency     = extcall.ClassDependency     // a service we depend on failed or answered unexpectedly
	ClassTimeout        = extcall.ClassTimeout        // the step ran out of its time budget
)

// Error is the one error type the engine returns. Its message is redacted of
// every known secret value before it is built; Cause keeps the underlying
// error for errors.Is / errors.As but is never printed unredacted.
type Error struct {
	Class     Class
	Step      string // the step, when known
	Op        string // the call or action that failed, e.g. "PutSecretValue"
	Msg       string // actionable, already redacted
	Retryable bool
	Cause     error
	causeText string // redacted text of Cause
}

func newError(class Class, step, op, msg string, cause error) *Error {
	e := &Error{Class: class, Step: step, Op: op, Msg: msg, Cause: cause, Retryable: retryableByDefault(class)}
	if cause != nil {
		e.causeText = cause.Error()
	}
	return e
}

// NewError builds a classified error. Strategies use it for their failures;
// the engine redacts its message and cause text with every secret it knows
// before it leaves the function.
func NewError(class Class, op, msg string, cause error) *Error {
	return newError(class, "", op, msg, cause)
}

func retryableByDefault(c Class) bool { return extcall.RetryableByDefault(c) }

// fromExtcall turns a library's classified failure into the engine's error,
// keeping class, call, message, retryability and cause.
func fromExtcall(ee *extcall.Error) *Error {
	e := &Error{Class: ee.Class, Op: ee.Op, Msg: ee.Msg, Retryable: ee.Retryable, Cause: ee.Cause}
	if ee.Cause != nil {
		e.causeText = ee.Cause.Error()
	}
	return e
}

func (e *Error) Error() string {
	s := string(e.Class) + " error"
	if e.Step != "" {
		s += " in " + e.Step
	}
	if e.Op != "" {
		s += " (" + e.Op + ")"
	}
	s += ": " + e.Msg
	if e.causeText != "" {
		s += ": " + e.causeText
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// ClassOf returns the class of err — of its *Error, else of a library's
// *extcall.Error — or ClassDependency for an unclassified error.
func ClassOf(err error) Class {
	var re *Error
	if errors.As(err, &re) {
		return re.Class
	}
	if c, ok := extcall.ClassOf(err); ok {
		return c
	}
	return ClassDependency
}

// IsRetryable reports whether err (its *Error, else its *extcall.Error) is
// marked retryable.
func IsRetryable(err error) bool {
	var re *Error
	if errors.As(err, &re) {
		return re.Retryable
	}
	var ee *extcall.Error
	if errors.As(err, &ee) {
		return ee.Retryable
	}
	return false
}

// redacted returns a copy of e whose texts have every secret replaced.
func (e *Error) redacted(r *Redactor, step string) *Error {
	c := *e
	if c.Step == "" {
		c.Step = step
	}
	c.Msg = r.Redact(c.Msg)
	c.causeText = r.Redact(c.causeText)
	return &c
}

// errorf is a convenience for engine-built errors.
func errorf(class Class, step Step, op, format string, args ...any) *Error {
	return newError(class, string(step), op, fmt.Sprintf(format, args...), nil)
}
