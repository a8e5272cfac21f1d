package wire_test

import (
	"encoding/json"
	"fmt"
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
