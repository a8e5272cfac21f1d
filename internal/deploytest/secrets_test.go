package deploytest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/pgsecret"
)

// generatedValue renders a secret's initial value as Secrets Manager would
// store it: SecretString as is, or GenerateSecretString's template with the
// generated key added (a fixed stand-in password here).
func generatedValue(t *testing.T, e *evaluator, id string) []byte {
	t.Helper()
	p, err := e.eval(props(resource(t, e.doc, id)))
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	pm := p.(M)
	if s, ok := pm["SecretString"].(string); ok {
		return []byte(s)
	}
	gen, _ := pm["GenerateSecretString"].(M)
	tmpl, _ := gen["SecretStringTemplate"].(string)
	if tmpl == "" {
		return []byte(strings.Repeat("x", int(num(gen["PasswordLength"]))))
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(tmpl), &obj); err != nil {
		t.Fatalf("%s: SecretStringTemplate is not JSON (%v): %s", id, err, tmpl)
	}
	obj[gen["GenerateStringKey"].(string)] = "Stand-in-generated-password-0123"
	b, _ := json.Marshal(obj)
	return b
}

func num(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case string:
		var f float64
		_ = json.Unmarshal([]byte(v), &f)
		return f
	}
	return 0
}

func TestDatabaseExampleSecretsParseAsDbrotateReadsThem(t *testing.T) {
	tpl := loadTemplate(t)
	cases := []struct {
		name        string
		params      map[string]string
		alternating bool
		pair        bool
		master      bool // the template creates the master secret
	}{
		{"alternating users with a created master secret", map[string]string{"DbHost": "db.example.internal"}, true, false, true},
		{"alternating users with an existing master and a pre-created pair", map[string]string{
			"DbHost": "db.example.internal", "DbUsername": "app_blue", "DbUserPair": "app_blue,app_green",
			"DbMasterSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0000-AbCdEf",
		}, true, true, false},
		{"single user", map[string]string{"DbHost": "db.example.internal", "DbRotationStrategy": "single"}, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEvaluator(tpl.Source, tc.params)
			for _, c := range []struct {
				cond string
				want bool
			}{{"HasDatabase", true}, {"CreateMasterSecret", tc.master}} {
				if got, err := e.condition(c.cond); err != nil || got != c.want {
					t.Fatalf("condition %s = %v (%v), want %v", c.cond, got, err, c.want)
				}
			}
			s, err := pgstrategy.ParseSecret("the example secret", generatedValue(t, e, "DbAppSecret"))
			if err != nil {
				t.Fatalf("dbrotate rejects the example application secret: %v", err)
			}
			if s.SSLMode != pgsecret.SSLVerifyFull {
				t.Errorf("sslmode %q, want verify-full by default", s.SSLMode)
			}
			if s.Alternating() != tc.alternating {
				t.Errorf("alternating = %v, want %v", s.Alternating(), tc.alternating)
			}
			if tc.alternating && tc.master && s.MasterARN != "arn:aws:secretsmanager:us-east-1:123456789012:secret:DbMasterSecret-AbCdEf" {
				t.Errorf("masterarn %q must name the created master secret", s.MasterARN)
			}
			if tc.alternating && !tc.master && s.MasterARN != tc.params["DbMasterSecretArn"] {
				t.Errorf("masterarn %q must be DbMasterSecretArn", s.MasterARN)
			}
			if (len(s.UserPair) == 2) != tc.pair {
				t.Errorf("userpair %v, want a pair: %v", s.UserPair, tc.pair)
			}
			if tc.master {
				if _, err := pgstrategy.ParseAdminSecret(generatedValue(t, e, "DbMasterSecret")); err != nil {
					t.Errorf("dbrotate rejects the example master secret: %v", err)
				}
			}
		})
	}
}

func TestKeyExampleSecretsStartInAStateTheirStrategyAccepts(t *testing.T) {
	tpl := loadTemplate(t)
	e := newEvaluator(tpl.Source, nil)
	t.Run("JWT signing keys: an empty document the first rotation fills", func(t *testing.T) {
		d, err := jwks.ParseDocument(generatedValue(t, e, "JwtSigningKeySecret"))
		if err != nil || !d.Bootstrap() {
			t.Errorf("jwtrotate must accept the initial value as a bootstrap document: %v", err)
		}
	})
	for _, c := range []struct{ id, kind string }{{"ApiKeySecret", apikey.KindAPIKey}, {"WebhookSigningKeySecret", apikey.KindWebhook}} {
		t.Run(c.id+" caller secret", func(t *testing.T) {
			cs, err := apikey.ParseCaller(generatedValue(t, e, c.id))
			if err != nil || cs.Kind != c.kind {
				t.Errorf("apikeyrotate must accept the initial caller secret of kind %s: %v %+v", c.kind, err, cs)
			}
		})
	}
	for _, c := range []struct{ id, kind string }{{"ApiKeyVerifierSecret", apikey.KindAPIKey}, {"WebhookVerifierSecret", apikey.KindWebhook}} {
		t.Run(c.id+" verifier secret", func(t *testing.T) {
			d, err := apikey.ParseVerifier(generatedValue(t, e, c.id))
			if err != nil || d.Kind != c.kind || len(d.Records) != 0 {
				t.Errorf("apikeyrotate must accept the initial, empty verifier document of kind %s: %v", c.kind, err)
			}
		})
	}
	t.Run("pepper is long enough", func(t *testing.T) {
		if n := len(generatedValue(t, e, "ApiKeyPepperSecret")); n < apikey.MinPepperLen {
			t.Errorf("pepper of %d bytes, apikeyrotate needs at least %d", n, apikey.MinPepperLen)
		}
	})
}

func TestFunctionsPointAtTheSecretsTheyUse(t *testing.T) {
	tpl := loadTemplate(t)
	e := newEvaluator(tpl.Source, map[string]string{"ApiKeyRegisterUrl": "https://keys.example.internal/register"})
	env := func(fn string) M {
		p, err := e.eval(props(resource(t, tpl.Source, fn)))
		if err != nil {
			t.Fatal(err)
		}
		return p.(M)["Environment"].(M)["Variables"].(M)
	}
	arn := func(id string) string {
		v, _ := e.ref(id)
		return v.(string)
	}
	cases := []struct{ fn, name, want string }{
		{"JwtRotateFunction", "JWT_PUBLIC_JWKS_SECRET_ARN", arn("JwtPublicJwksSecret")},
		{"ApiKeyRotateFunction", "APIKEY_KIND", apikey.KindAPIKey},
		{"ApiKeyRotateFunction", "APIKEY_VERIFIER_SECRET_ARN", arn("ApiKeyVerifierSecret")},
		{"ApiKeyRotateFunction", "APIKEY_PEPPER_SECRET_ARN", arn("ApiKeyPepperSecret")},
		{"ApiKeyRotateFunction", "APIKEY_REGISTER_HMAC_SECRET_ARN", arn("ApiKeyRegisterHmacSecret")},
		{"WebhookRotateFunction", "APIKEY_KIND", apikey.KindWebhook},
		{"WebhookRotateFunction", "APIKEY_VERIFIER_SECRET_ARN", arn("WebhookVerifierSecret")},
	}
	for _, c := range cases {
		if got := env(c.fn)[c.name]; got != c.want {
			t.Errorf("%s: %s = %v, want %s", c.fn, c.name, got, c.want)
		}
	}
	// Without a registration URL the HMAC secret's variable is unset or
	// empty (apikeyrotate reads an empty variable as unset).
	e = newEvaluator(tpl.Source, nil)
	if v := env("ApiKeyRotateFunction")["APIKEY_REGISTER_HMAC_SECRET_ARN"]; v != nil && v != "" {
		t.Errorf("APIKEY_REGISTER_HMAC_SECRET_ARN must be unset without ApiKeyRegisterUrl, got %v", v)
	}
	if v := env("WebhookRotateFunction")["APIKEY_PEPPER_SECRET_ARN"]; v != nil && v != "" {
		t.Error("webhook keys take no pepper (their verifier holds the key)")
	}
}
