// Package wire owns the rotation suite's names on the wire that the operator
// tool needs without linking the rotation engine (which would bring the SNS
// client and grow the binary): Secrets Manager's staging labels and the
// notification schema a function publishes. wire_test.go proves they match
// pkg/rotation's.
package wire

import "encoding/json"

// Secrets Manager's staging labels.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// EventFailed is the notification event of a failed step.
const EventFailed = "rotation.failed"

// Notification is the part of a rotation function's notification that the
// operator tool and the demo read (see pkg/rotation.Notification).
type Notification struct {
	SchemaVersion int    `json:"schemaVersion"`
	Event         string `json:"event"`
	Kind          string `json:"kind"`
	VersionID     string `json:"versionId"`
	Step          string `json:"step"`
	DurationMs    int64  `json:"durationMs"`
	ErrorClass    string `json:"errorClass,omitempty"`
	Retryable     bool   `json:"retryable,omitempty"`
	Message       string `json:"message,omitempty"`
}

// ParseNotification reads a notification from an SQS body: either the raw
// message or SNS's JSON envelope around it.
func ParseNotification(body string) (Notification, bool) {
	var n Notification
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
