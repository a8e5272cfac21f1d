package main

import (
	"context"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/internal/fnmain"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestABadSettingFailsEveryInvocationWithAConfigurationError(t *testing.T) {
	env := map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"APIKEY_VERIFIER_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:v",
		"APIKEY_OVERLAP":             "soon",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	h := fnmain.NewHandler(context.Background(), build, func(k string) string { return env[k] })
	ev := `{"Step":"createSecret","SecretId":"arn:aws:secretsmanager:us-east-1:123456789012:secret:c","ClientRequestToken":"00000000-0000-0000-0000-000000000001"}`
	for i := 0; i < 2; i++ {
		_, err := h.Invoke(context.Background(), []byte(ev))
		if rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), "APIKEY_OVERLAP") {
			t.Fatalf("invocation %d: %v", i, err)
		}
	}
}
