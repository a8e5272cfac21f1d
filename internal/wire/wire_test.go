package wire_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/internal/wire"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestNamesMatchTheEngine(t *testing.T) {
	if wire.StageCurrent != rotation.StageCurrent || wire.StagePending != rotation.StagePending || wire.StagePrevious != rotation.StagePrevious || wire.EventFailed != rotation.EventFailed {
		t.Fatal("a staging label or event name differs from pkg/rotation's")
	}
}

func TestNotificationReadsWhatTheEnginePublishesRawAndInSNSEnvelope(t *testing.T) {
	n := rotation.Notification{SchemaVersion: 1, Event: rotation.EventFailed, Kind: "postgres", VersionID: "v1", Step: "testSecret",
		DurationMs: 12, ErrorClass: "authentication", Retryable: true, Message: "refused", Time: time.Now()}
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{string(raw), fmt.Sprintf(`{"Type":"Notification","Message":%q}`, raw)} {
		got, ok := wire.ParseNotification(body)
		want := wire.Notification{SchemaVersion: 1, Event: n.Event, Kind: n.Kind, VersionID: n.VersionID, Step: n.Step, DurationMs: 12, ErrorClass: n.ErrorClass, Retryable: true, Message: n.Message}
		if !ok || got != want {
			t.Fatalf("%v\n got %+v\nwant %+v", ok, got, want)
		}
	}
	if _, ok := wire.ParseNotification(`{"hello":1}`); ok {
		t.Fatal("a foreign message parsed as a notification")
	}
}
