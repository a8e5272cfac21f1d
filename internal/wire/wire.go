// Package wire owns reading a rotation function's notifications back off the
// wire: the body of an SQS message from a queue subscribed to the
// notification topic is either the raw notification or SNS's JSON envelope
// around it. The operator tool and the demo both read them. It keeps its own
// copy of the notification's fields (a test holds them equal to the
// engine's) so that the operator tool does not link the engine.
package wire

import (
	"encoding/json"
	"time"
)

// The notification events a reader acts on.
const (
	EventStarted   = "rotation.started"
	EventSucceeded = "rotation.succeeded"
	EventFailed    = "rotation.failed"
	EventWarning   = "rotation.warning"
)

// Notification is what a rotation function publishes after each step, as
// read back: the fields of the engine's notification.
type Notification struct {
	SchemaVersion int               `json:"schemaVersion"`
	Event         string            `json:"event"`
	Kind          string            `json:"kind"`
	Function      string            `json:"function,omitempty"`
	SecretARN     string            `json:"secretArn"`
	VersionID     string            `json:"versionId"`
	Step          string            `json:"step"`
	Outcome       string            `json:"outcome"`
	DurationMs    int64             `json:"durationMs"`
	ErrorClass    string            `json:"errorClass,omitempty"`
	Retryable     bool              `json:"retryable,omitempty"`
	Message       string            `json:"message,omitempty"`
	ConfigTest    bool              `json:"configTest,omitempty"`
	Warnings      []string          `json:"warnings,omitempty"`
	Details       map[string]string `json:"details,omitempty"`
	Time          time.Time         `json:"time"`
}

// ParseNotification reads a notification from an SQS body: either the raw
// message or SNS's JSON envelope around it. ok is false for anything else.
func ParseNotification(body string) (n Notification, ok bool) {
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
