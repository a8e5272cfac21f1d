package wire_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/internal/wire"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestNotificationReadsWhatTheEnginePublishesRawAndInSNSEnvelope(t *testing.T) {
	n := rotation.Notification{SchemaVersion: 1, Event: rotation.EventFailed, Kind: "postgres", VersionID: "v1", Step: "testSecret",
		DurationMs: 12, ErrorClass: "authentication", Retryable: true, Message: "refused", Time: time.Now().UTC().Truncate(time.Second)}
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{string(raw), fmt.Sprintf(`{"Type":"Notification","Message":%q}`, raw)} {
		got, ok := wire.ParseNotification(body)
		if !ok || got.Event != n.Event || got.VersionID != n.VersionID || got.ErrorClass != n.ErrorClass || !got.Retryable || got.Message != n.Message || !got.Time.Equal(n.Time) {
			t.Fatalf("%v\n got %+v\nwant %+v", ok, got, n)
		}
	}
	if _, ok := wire.ParseNotification(`{"hello":1}`); ok {
		t.Fatal("a foreign message parsed as a notification")
	}
}

// The reader's copy of the notification must carry every field the engine
// publishes, under the same JSON names, and the same event names.
func TestNotificationHasTheEnginesFieldsAndEvents(t *testing.T) {
	n := rotation.Notification{SchemaVersion: 1, Event: rotation.EventWarning, Kind: "jwt", Function: "fn", SecretARN: "arn:x", VersionID: "v2",
		Step: "finishSecret", Outcome: "success", DurationMs: 7, ErrorClass: "dependency", Retryable: true, Message: "m", ConfigTest: true,
		Warnings: []string{"w"}, Details: map[string]string{"k": "v"}, Time: time.Unix(1700000000, 0).UTC()}
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := wire.ParseNotification(string(raw))
	if !ok {
		t.Fatal("not parsed")
	}
	back, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(back) != string(raw) {
		t.Fatalf("fields differ:\nengine %s\nreader %s", raw, back)
	}
	if rt, wt := reflect.TypeOf(n), reflect.TypeOf(got); rt.NumField() != wt.NumField() {
		t.Fatalf("engine notification has %d fields, reader %d", rt.NumField(), wt.NumField())
	}
	for r, w := range map[string]string{rotation.EventStarted: wire.EventStarted, rotation.EventSucceeded: wire.EventSucceeded, rotation.EventFailed: wire.EventFailed, rotation.EventWarning: wire.EventWarning} {
		if r != w {
			t.Errorf("engine event %q, reader %q", r, w)
		}
	}
}
