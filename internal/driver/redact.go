package driver

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// The RotationToken is sensitive. These methods keep it out of every fmt
// verb and of slog; a Driver is not JSON-encodable (it holds functions).

// String describes the driver without its RotationToken.
func (d Driver) String() string {
	return fmt.Sprintf("driver.Driver{LambdaARN:%s Attempts:%d StepTimeout:%s RotationToken:%s}", d.LambdaARN, d.Attempts, d.StepTimeout, d.redactedToken())
}

// GoString is String, for %#v.
func (d Driver) GoString() string { return d.String() }

// Format prints String for every verb.
func (d Driver) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, d.String()) }

// LogValue logs the driver's settings without its RotationToken.
func (d Driver) LogValue() slog.Value {
	return slog.GroupValue(slog.String("lambdaArn", d.LambdaARN), slog.Int("attempts", d.Attempts), slog.Duration("stepTimeout", d.StepTimeout), slog.String("rotationToken", d.redactedToken()))
}

func (d Driver) redactedToken() string {
	if d.RotationToken == "" {
		return ""
	}
	return redact.Placeholder
}
