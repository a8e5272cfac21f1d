// Package wire owns reading a rotation function's notifications back off the
// wire: the body of an SQS message from a queue subscribed to the
// notification topic is either the raw notification or SNS's JSON envelope
// around it. The operator tool and the demo both read them.
package wire

import (
	"encoding/json"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// ParseNotification reads a notification from an SQS body: either the raw
// message or SNS's JSON envelope around it. ok is false for anything else.
func ParseNotification(body string) (n rotation.Notification, ok bool) {
	// SNS's envelope has "Type":"Notification"; our own message has a
	// lower-case "message" field that encoding/json would also match.
	var env struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
	}
	if json.Unmarshal([]byte(body), &env) == nil && env.Type == "Notification" && env.Message != "" {
		body = env.Message
	}
	if err := json.Unmarshal([]byte(body), &n); err != nil || n.SchemaVersion == 0 {
		return n, false
	}
	return n, true
}
