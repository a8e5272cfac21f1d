package rotation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// Step is one of the four rotation steps, camelCase as on the wire.
type Step string

// The four steps Secrets Manager calls, in order.
const (
	StepCreate Step = "createSecret"
	StepSet    Step = "setSecret"
	StepTest   Step = "testSecret"
	StepFinish Step = "finishSecret"
)

// StepProbe is the suite's own read-only step, never sent by the service: it
// proves that the version named by ClientRequestToken, which must carry
// AWSCURRENT, still authenticates in the target (the strategy's Test in its
// configuration-test mode). It changes nothing; operators run it before
// discarding a stuck rotation (internal/operator).
const StepProbe Step = "probeSecret"

// Steps lists the four steps in the order the service calls them.
var Steps = []Step{StepCreate, StepSet, StepTest, StepFinish}

// Event is what Secrets Manager sends the rotation function for each step.
// RotationToken is sensitive. Event's String, GoString, Format (every verb)
// and LogValue never show it: String and the plain verbs leave it out, %+v,
// %#v and slog show RotationToken as [REDACTED] when it is set. Its JSON
// encoding is the wire format, token included, because tools build the
// Lambda invocation from it; never encode an Event to a log or a message.
type Event struct {
	Step               Step   `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	RotationToken      string `json:"RotationToken,omitempty"`
}

// Bounds on event fields. A secret ARN is at most 2048 characters; version ids
// (ClientRequestToken) are 32–64 characters; we accept 1–64. RotationToken is
// opaque; 4096 is far above anything the service sends.
const (
	maxSecretIDLen      = 2048
	maxTokenLen         = 64
	maxRotationTokenLen = 4096
	maxEventBytes       = 16 << 10
)

// ParseEvent decodes and validates an event. Unknown fields are ignored, as
// the contract requires; missing, oversized or non-printable required fields
// and unknown steps are terminal input errors.
func ParseEvent(raw []byte) (Event, error) {
	var ev Event
	if len(raw) > maxEventBytes {
		return ev, newError(ClassInput, "", "parse event", fmt.Sprintf("event is %d bytes, more than the %d allowed", len(raw), maxEventBytes), nil)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var wire struct {
		Step               *string `json:"Step"`
		SecretID           *string `json:"SecretId"`
		ClientRequestToken *string `json:"ClientRequestToken"`
		RotationToken      *string `json:"RotationToken"`
	}
	if err := dec.Decode(&wire); err != nil {
		return ev, newError(ClassInput, "", "parse event", "event is not a JSON object with string fields Step, SecretId, ClientRequestToken", nil)
	}
	if dec.More() {
		return ev, newError(ClassInput, "", "parse event", "trailing data after the event object", nil)
	}
	if wire.Step != nil {
		ev.Step = Step(*wire.Step)
	}
	if wire.SecretID != nil {
		ev.SecretID = *wire.SecretID
	}
	if wire.ClientRequestToken != nil {
		ev.ClientRequestToken = *wire.ClientRequestToken
	}
	if wire.RotationToken != nil {
		ev.RotationToken = *wire.RotationToken
	}
	return ev, ev.Validate()
}

// Validate checks the event's fields: the step is one of the four, SecretId
// and ClientRequestToken are present, bounded and printable, and a
// RotationToken, when present, is bounded and printable.
func (e Event) Validate() error {
	switch e.Step {
	case StepCreate, StepSet, StepTest, StepFinish, StepProbe:
	case "":
		return newError(ClassInput, "", "validate event", "field Step is missing", nil)
	default:
		return newError(ClassInput, "", "validate event", fmt.Sprintf("unknown Step %q: want createSecret, setSecret, testSecret, finishSecret or probeSecret", clip(string(e.Step), 40)), nil)
	}
	if err := checkField("SecretId", e.SecretID, maxSecretIDLen, true); err != nil {
		return err
	}
	if err := checkField("ClientRequestToken", e.ClientRequestToken, maxTokenLen, true); err != nil {
		return err
	}
	// The RotationToken's value never appears in an error.
	if e.RotationToken != "" {
		if len(e.RotationToken) > maxRotationTokenLen || !printable(e.RotationToken) {
			return newError(ClassInput, string(e.Step), "validate event", "field RotationToken is oversized or not printable", nil)
		}
	}
	return nil
}

func checkField(name, v string, max int, required bool) error {
	switch {
	case v == "" && required:
		return newError(ClassInput, "", "validate event", "field "+name+" is missing or empty", nil)
	case len(v) > max:
		return newError(ClassInput, "", "validate event", fmt.Sprintf("field %s is %d bytes, more than %d", name, len(v), max), nil)
	case !printable(v):
		return newError(ClassInput, "", "validate event", "field "+name+" has non-printable or space characters", nil)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// String describes the event without its RotationToken.
func (e Event) String() string {
	return fmt.Sprintf("%s %s version %s", e.Step, e.SecretID, e.ClientRequestToken)
}

// GoString describes the event for %#v, with the RotationToken redacted.
func (e Event) GoString() string {
	tok := `""`
	if e.RotationToken != "" {
		tok = redact.Placeholder
	}
	return fmt.Sprintf("rotation.Event{Step:%q, SecretID:%q, ClientRequestToken:%q, RotationToken:%s}", string(e.Step), e.SecretID, e.ClientRequestToken, tok)
}

// Format prints the event in every fmt verb without its RotationToken: %#v
// is GoString, %+v names the fields (RotationToken:[REDACTED] when set), and
// every other verb formats String.
func (e Event) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, e.GoString())
	case verb == 'v' && f.Flag('+'):
		_, _ = fmt.Fprintf(f, "{Step:%s SecretID:%s ClientRequestToken:%s RotationToken:%s}", e.Step, e.SecretID, e.ClientRequestToken, e.redactedToken())
	default:
		_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), e.String())
	}
}

// LogValue logs the event's fields, with the RotationToken redacted.
func (e Event) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("Step", string(e.Step)),
		slog.String("SecretId", e.SecretID),
		slog.String("ClientRequestToken", e.ClientRequestToken),
		slog.String("RotationToken", e.redactedToken()),
	)
}

// redactedToken is redact.Placeholder when the event has a RotationToken
// and "" when it has none.
func (e Event) redactedToken() string {
	if e.RotationToken == "" {
		return ""
	}
	return redact.Placeholder
}
