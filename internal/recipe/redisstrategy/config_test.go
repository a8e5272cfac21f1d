package redisstrategy

import (
	"strings"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestConfigFromEnvReadsTheDurationGrammarAndDefaults(t *testing.T) {
	env := map[string]string{EnvAdminSecretARN: "arn:aws:secretsmanager:eu-west-1:1:secret:redis-admin-AbCdEf", EnvCommandTimeout: "2s"}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.CommandTimeout != 2*time.Second || c.PasswordLength != DefaultPasswordLength || len(c.Warnings) != 0 {
		t.Fatalf("%+v", c)
	}
}

func TestEveryBadSettingIsReportedAtOnce(t *testing.T) {
	env := map[string]string{EnvPasswordLength: "8", EnvCommandTimeout: "5"}
	_, err := ConfigFromEnv(func(k string) string { return env[k] })
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("class %q: %v", rotation.ClassOf(err), err)
	}
	for _, want := range []string{EnvAdminSecretARN + " is required", EnvPasswordLength + " 8 is outside 16…128", EnvCommandTimeout + ` "5" has no unit`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestAShortPasswordWarnsButWorks(t *testing.T) {
	env := map[string]string{EnvAdminSecretARN: "arn:x", EnvPasswordLength: "16"}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || len(c.Warnings) != 1 {
		t.Fatalf("warnings %v, err %v", c.Warnings, err)
	}
}

func TestNewRefusesWhatConfigFromEnvWouldRefuse(t *testing.T) {
	if _, err := New(Config{PasswordLength: 32}, Deps{ACL: NewMemACL()}); rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("no admin secret: %v", err)
	}
	if _, err := New(Config{AdminSecretARN: "arn:x", PasswordLength: 8}, Deps{ACL: NewMemACL()}); rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("short passwords: %v", err)
	}
	if _, err := New(Config{AdminSecretARN: "arn:x", PasswordLength: 32}, Deps{}); rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("no ACL: %v", err)
	}
}
