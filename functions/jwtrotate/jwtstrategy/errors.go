package jwtstrategy

import (
	"errors"

	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// inputErr wraps a document problem as a ClassInput error.
func inputErr(op, what string, err error) error {
	return rotation.NewError(rotation.ClassInput, op, what, err)
}

// sealErr classifies a failure to seal or open a private key.
func sealErr(op, what string, err error) error {
	var re *rotation.Error
	switch {
	case errors.Is(err, envelope.ErrProvider):
		// The class comes from the *extcall.Error pkg/envelope puts in the chain.
		class := rotation.ClassOf(err)
		msg := what + ": the KMS call failed"
		if class == rotation.ClassConfiguration || class == rotation.ClassPermission {
			msg += "; check that JWT_KMS_KEY_ARN names an enabled symmetric key and that the function's role has kms:GenerateDataKey and kms:Decrypt on it"
		}
		return rotation.NewError(class, op, msg, err)
	case errors.Is(err, envelope.ErrKeyNotAllowed):
		return rotation.NewError(rotation.ClassConfiguration, op, what+": the sealed key names a KMS key other than JWT_KMS_KEY_ARN (sealed under another key, or its header was altered); no KMS call was made", err)
	case errors.Is(err, envelope.ErrContextMismatch):
		return rotation.NewError(rotation.ClassInput, op, what+": the sealed key is bound to another secret or kid (copied between secrets or edited by hand); use the emergency re-key mode to replace it", err)
	case errors.Is(err, envelope.ErrAuthentication), errors.Is(err, envelope.ErrMalformed), errors.Is(err, envelope.ErrUnsupportedVersion), errors.Is(err, jwks.ErrKeyMismatch), errors.Is(err, jwks.ErrMalformed):
		return rotation.NewError(rotation.ClassInput, op, what+": the sealed private key is damaged or altered; use the emergency re-key mode to replace it", err)
	case errors.As(err, &re):
		return err
	}
	return rotation.NewError(rotation.ClassDependency, op, what, err)
}
