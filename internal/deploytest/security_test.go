package deploytest

import (
	"slices"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/pkg/jwks"
)

// The prefix every secret ARN pattern in the template starts with.
const secretArnPrefix = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:/${AppName}/${EnvironmentName}/"

var secretActions = []string{
	"secretsmanager:DescribeSecret",
	"secretsmanager:GetSecretValue",
	"secretsmanager:PutSecretValue",
	"secretsmanager:UpdateSecretVersionStage",
}

// rotationFunctions maps each function's logical id to its role's logical id.
func rotationFunctions(t *testing.T, tpl *Template) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, fn := range resources(tpl.Translated, "AWS::Lambda::Function") {
		role, _ := getAttOf(props(fn)["Role"])
		if role == "" {
			t.Fatalf("%s: Role must be !GetAtt <role>.Arn", id)
		}
		out[id] = role
	}
	return out
}

func roleStatements(t *testing.T, tpl *Template, role string) []M {
	t.Helper()
	var out []M
	for name, sts := range identityStatements(tpl.Translated) {
		if strings.HasPrefix(name, role+"/") {
			out = append(out, sts...)
		}
	}
	if len(out) == 0 {
		t.Fatalf("role %s has no inline policy", role)
	}
	return out
}

func hasAny(st M, actions ...string) bool {
	for _, a := range strs(st["Action"]) {
		if slices.Contains(actions, a) {
			return true
		}
	}
	return false
}

func TestRotationRolesRotateOnlySecretsConfiguredForTheirOwnFunction(t *testing.T) {
	tpl := loadTemplate(t)
	fns := rotationFunctions(t, tpl)
	for _, fnID := range sortedKeys(fns) {
		fnName := subString(props(resource(t, tpl.Source, fnID))["FunctionName"])
		if fnName == "" {
			t.Errorf("%s: FunctionName must be a fixed !Sub name (the role's AllowRotationLambdaArn condition names it)", fnID)
			continue
		}
		rotates := false
		for _, st := range roleStatements(t, tpl, fns[fnID]) {
			if !hasAny(st, secretActions...) {
				continue
			}
			for _, res := range resourceAlternatives(st["Resource"]) {
				if len(res) != 1 {
					t.Errorf("%s: statement %v must name one secret or one hierarchy, got %v", fns[fnID], st["Sid"], res)
					continue
				}
				if refOf(res[0]) != "" {
					// Reading the master secret, writing verifier / JWKS records:
					// one exact secret by !Ref. A shared verifier secret is
					// written with a compare-and-swap (PutSecretValue under a
					// private label, then UpdateSecretVersionStage of
					// AWSCURRENT), so stage moves are allowed there.
					continue
				}
				if !hasAny(st, "secretsmanager:UpdateSecretVersionStage") {
					t.Errorf("%s: statement %v on other secrets must name one secret by !Ref, got %v", fns[fnID], st["Sid"], res[0])
					continue
				}
				rotates = true
				if p := subString(res[0]); !strings.HasPrefix(p, secretArnPrefix) {
					t.Errorf("%s: rotation statement %v must stay inside /<app>/<env>/, got %v", fns[fnID], st["Sid"], res[0])
				}
				cond := conditionKeys(st)["secretsmanager:resource/allowrotationlambdaarn"]
				if want := ":function:" + fnName; !strings.HasSuffix(subString(cond), want) {
					t.Errorf("%s: rotation statement %v must be conditioned on secretsmanager:resource/AllowRotationLambdaArn = ...%s, got %v", fns[fnID], st["Sid"], want, cond)
				}
			}
		}
		if !rotates {
			t.Errorf("%s: role %s cannot rotate any secret", fnID, fns[fnID])
		}
	}
}

func TestRolesReachTheOtherSecretsTheirStrategyNeeds(t *testing.T) {
	tpl := loadTemplate(t)
	cases := []struct {
		name, role, action, secret string
	}{
		{"alternating users read the master secret", "DbRotateRole", "secretsmanager:GetSecretValue", "DbMasterSecret"},
		{"jwtrotate publishes the public JWKS", "JwtRotateRole", "secretsmanager:PutSecretValue", "JwtPublicJwksSecret"},
		{"apikeyrotate writes verifier records", "ApiKeyRotateRole", "secretsmanager:PutSecretValue", "ApiKeyVerifierSecret"},
		{"apikeyrotate moves the verifier's AWSCURRENT (compare-and-swap)", "ApiKeyRotateRole", "secretsmanager:UpdateSecretVersionStage", "ApiKeyVerifierSecret"},
		{"webhookrotate moves the receiver verifier's AWSCURRENT (compare-and-swap)", "WebhookRotateRole", "secretsmanager:UpdateSecretVersionStage", "WebhookVerifierSecret"},
		{"apikeyrotate reads the pepper", "ApiKeyRotateRole", "secretsmanager:GetSecretValue", "ApiKeyPepperSecret"},
		{"apikeyrotate reads the registration signing key", "ApiKeyRotateRole", "secretsmanager:GetSecretValue", "ApiKeyRegisterHmacSecret"},
		{"webhookrotate writes the receiver's verifier", "WebhookRotateRole", "secretsmanager:PutSecretValue", "WebhookVerifierSecret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, st := range roleStatements(t, tpl, tc.role) {
				for _, res := range resourceAlternatives(st["Resource"]) {
					if hasAny(st, tc.action) && slices.ContainsFunc(res, func(r any) bool { return refOf(r) == tc.secret }) {
						return
					}
				}
			}
			t.Errorf("%s has no %s on %s", tc.role, tc.action, tc.secret)
		})
	}
	// Single-user recovery lists the rotated secret's older versions
	// (pgstrategy's Store.Versions), bound like every rotation call.
	lists := false
	for _, st := range roleStatements(t, tpl, "DbRotateRole") {
		if hasAny(st, "secretsmanager:ListSecretVersionIds") && conditionKeys(st)["secretsmanager:resource/allowrotationlambdaarn"] != nil {
			lists = true
		}
	}
	if !lists {
		t.Error("DbRotateRole cannot ListSecretVersionIds on the secrets it rotates (single-user recovery)")
	}
	// The master secret is read, never written.
	for _, st := range roleStatements(t, tpl, "DbRotateRole") {
		for _, r := range slices.Concat(resourceAlternatives(st["Resource"])...) {
			if refOf(r) == "DbMasterSecret" && hasAny(st, "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage") {
				t.Errorf("DbRotateRole may only read the master secret: %v", st)
			}
		}
	}
}

var cryptoActions = []string{
	"kms:*", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*",
	"kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant",
}

func boundToServiceOrContext(st M) bool {
	for k := range conditionKeys(st) {
		if k == "kms:viaservice" || strings.HasPrefix(k, "kms:encryptioncontext:") {
			return true
		}
	}
	return false
}

func TestKmsUseInRolesIsBoundToAServiceOrAnEncryptionContext(t *testing.T) {
	tpl := loadTemplate(t)
	for name, sts := range identityStatements(tpl.Translated) {
		for _, st := range sts {
			if !hasAny(st, cryptoActions...) {
				continue
			}
			if !boundToServiceOrContext(st) {
				t.Errorf("%s: statement %v uses KMS without kms:ViaService or an encryption-context condition", name, st["Sid"])
			}
			for _, r := range slices.Concat(resourceAlternatives(st["Resource"])...) {
				if id, _ := getAttOf(r); id == "" && refOf(r) == "" {
					t.Errorf("%s: statement %v must name its key, got %v", name, st["Sid"], r)
				}
			}
		}
	}
}

func TestKeyPoliciesGiveTheAccountAdministrationButNoCryptoWithoutConditions(t *testing.T) {
	tpl := loadTemplate(t)
	keys := resources(tpl.Source, "AWS::KMS::Key")
	if len(keys) < 2 {
		t.Fatalf("want the master key and a separate secrets key, got %v", sortedKeys(keys))
	}
	aliased := map[string]bool{}
	for _, a := range resources(tpl.Source, "AWS::KMS::Alias") {
		aliased[refOf(props(a)["TargetKeyId"])] = true
	}
	for _, id := range sortedKeys(keys) {
		p := props(keys[id])
		if p["EnableKeyRotation"] != true {
			t.Errorf("%s: EnableKeyRotation must be true", id)
		}
		if !aliased[id] {
			t.Errorf("%s: no alias", id)
		}
		if keys[id]["DeletionPolicy"] != "Retain" {
			t.Errorf("%s: DeletionPolicy must be Retain (deleting a key loses everything encrypted under it)", id)
		}
		for _, st := range statements(p["KeyPolicy"]) {
			if st["Effect"] != "Allow" || !hasAny(st, cryptoActions...) {
				continue
			}
			if len(conditionKeys(st)) == 0 {
				t.Errorf("%s: statement %v grants %v with no condition", id, st["Sid"], st["Action"])
			}
			if hasAny(st, "kms:*", "kms:CreateGrant") {
				t.Errorf("%s: statement %v grants kms:* or kms:CreateGrant", id, st["Sid"])
			}
		}
	}
}

// jwtContextConditions checks a statement's encryption-context conditions
// against the context pkg/jwks actually seals private keys under: every
// context key the statement conditions on must be one jwks uses, and the
// secret-naming one must be there.
func jwtContextConditions(t *testing.T, where string, st M) {
	t.Helper()
	ec := jwks.KeyContext("/app/env/jwt/signing-keys", "kid")
	ck := conditionKeys(st)
	named := false
	for k, v := range ck {
		name, ok := strings.CutPrefix(k, "kms:encryptioncontext:")
		if !ok {
			continue
		}
		real := ""
		for ek := range ec {
			if strings.EqualFold(ek, name) {
				real = ek
			}
		}
		switch {
		case real == "":
			t.Errorf("%s: conditions on encryption-context key %q, which jwks.KeyContext does not set (it sets %v)", where, name, sortedKeys(ec))
		case real == "secret":
			named = strings.HasPrefix(subString(v), "/${AppName}/${EnvironmentName}/jwt/")
		case real == "purpose":
			if v != ec["purpose"] {
				t.Errorf("%s: purpose condition %v, jwks seals with %q", where, v, ec["purpose"])
			}
		}
	}
	if !named {
		t.Errorf("%s: must require the encryption context's secret to be under /${AppName}/${EnvironmentName}/jwt/, got %v", where, ck)
	}
}

func TestJwtMasterKeyOpensOnlyForTheSigningKeySecret(t *testing.T) {
	tpl := loadTemplate(t)
	roleName := subString(props(resource(t, tpl.Source, "JwtRotateRole"))["RoleName"])
	if roleName == "" {
		t.Fatal("JwtRotateRole needs a fixed RoleName for the key policy to name it")
	}
	granted := false
	for _, st := range statements(props(resource(t, tpl.Source, "JwtMasterKey"))["KeyPolicy"]) {
		if !hasAny(st, "kms:Decrypt", "kms:GenerateDataKey") {
			continue
		}
		jwtContextConditions(t, "JwtMasterKey/"+st["Sid"].(string), st)
		if hasAny(st, "kms:GenerateDataKey") {
			granted = true
			if !strings.HasSuffix(subString(conditionKeys(st)["aws:principalarn"]), ":role/"+roleName) {
				t.Errorf("JwtMasterKey statement %v lets someone other than %s generate data keys", st["Sid"], roleName)
			}
		}
	}
	if !granted {
		t.Error("JwtMasterKey's policy does not let jwtrotate generate data keys")
	}
	found := false
	for _, st := range roleStatements(t, tpl, "JwtRotateRole") {
		for _, r := range list(st["Resource"]) {
			if id, _ := getAttOf(r); id == "JwtMasterKey" {
				found = true
				jwtContextConditions(t, "JwtRotateRole/"+st["Sid"].(string), st)
			}
		}
	}
	if !found {
		t.Error("JwtRotateRole has no statement for the master key")
	}
	env := props(resource(t, tpl.Source, "JwtRotateFunction"))["Environment"].(M)["Variables"].(M)
	if id, _ := getAttOf(env["JWT_KMS_KEY_ARN"]); id != "JwtMasterKey" {
		t.Errorf("JWT_KMS_KEY_ARN must be the master key's ARN (jwtrotate accepts only a key ARN), got %v", env["JWT_KMS_KEY_ARN"])
	}
}

func TestExampleSecretsLiveUnderAppEnvironmentAndUseTheSecretsKey(t *testing.T) {
	tpl := loadTemplate(t)
	secrets := resources(tpl.Source, "AWS::SecretsManager::Secret")
	for _, want := range []string{"DbAppSecret", "DbMasterSecret", "JwtSigningKeySecret", "JwtPublicJwksSecret", "ApiKeySecret", "ApiKeyVerifierSecret", "ApiKeyPepperSecret", "WebhookSigningKeySecret", "WebhookVerifierSecret"} {
		if _, ok := secrets[want]; !ok {
			t.Errorf("example secret %s missing", want)
		}
	}
	for _, id := range sortedKeys(secrets) {
		p := props(secrets[id])
		if name := subString(p["Name"]); !strings.HasPrefix(name, "/${AppName}/${EnvironmentName}/") {
			t.Errorf("%s: Name must be /${AppName}/${EnvironmentName}/..., got %v", id, p["Name"])
		}
		if key, _ := getAttOf(p["KmsKeyId"]); key != "SecretsKey" {
			t.Errorf("%s: KmsKeyId must be the secrets key, got %v", id, p["KmsKeyId"])
		}
	}
}

func TestNotificationTopicIsEncryptedAndReceivesRotationFailures(t *testing.T) {
	tpl := loadTemplate(t)
	doc := tpl.Source
	topic := props(resource(t, doc, "NotificationTopic"))
	if refOf(topic["KmsMasterKeyId"]) == "" {
		t.Error("NotificationTopic must be encrypted with a customer-managed key")
	}
	rule := props(resource(t, doc, "RotationFailureRule"))
	pat, _ := rule["EventPattern"].(M)
	detail, _ := pat["detail"].(M)
	if !slices.Contains(list(pat["source"]), any("aws.secretsmanager")) ||
		!slices.Contains(list(pat["detail-type"]), any("AWS Service Event via CloudTrail")) {
		t.Errorf("rule must match source aws.secretsmanager, detail-type AWS Service Event via CloudTrail: %v", pat)
	}
	for _, ev := range []string{"RotationFailed", "RotationAbandoned"} {
		if !slices.Contains(list(detail["eventName"]), any(ev)) {
			t.Errorf("rule must match detail.eventName %s", ev)
		}
	}
	targets := list(rule["Targets"])
	if len(targets) != 1 || refOf(targets[0].(M)["Arn"]) != "NotificationTopic" {
		t.Errorf("rule must target the notification topic: %v", targets)
	}
	allowed := false
	for _, st := range statements(props(resource(t, doc, "NotificationTopicPolicy"))["PolicyDocument"]) {
		pr, _ := st["Principal"].(M)
		if st["Effect"] == "Allow" && pr["Service"] == "events.amazonaws.com" {
			id, _ := getAttOf(conditionKeys(st)["aws:sourcearn"])
			allowed = id == "RotationFailureRule"
		}
	}
	if !allowed {
		t.Error("topic policy must let events.amazonaws.com publish, for the rotation-failure rule only (aws:SourceArn)")
	}
	// EventBridge and CloudWatch alarms publish to an encrypted topic only if
	// the key lets them.
	var services []string
	for _, st := range statements(props(resource(t, doc, refOf(topic["KmsMasterKeyId"])))["KeyPolicy"]) {
		if pr, _ := st["Principal"].(M); pr != nil && hasAny(st, "kms:GenerateDataKey") {
			services = append(services, strs(pr["Service"])...)
		}
	}
	for _, svc := range []string{"events.amazonaws.com", "cloudwatch.amazonaws.com"} {
		if !slices.Contains(services, svc) {
			t.Errorf("topic key must let %s generate data keys", svc)
		}
	}
	if sub := resource(t, doc, "NotificationEmailSubscription"); sub["Condition"] != "HasEmail" {
		t.Errorf("e-mail subscription must be optional (Condition HasEmail), got %v", sub["Condition"])
	}
}

func TestEveryFunctionHasAnErrorsAlarmToTheTopic(t *testing.T) {
	tpl := loadTemplate(t)
	alarmed := map[string]bool{}
	for _, a := range resources(tpl.Source, "AWS::CloudWatch::Alarm") {
		p := props(a)
		if p["Namespace"] != "AWS/Lambda" || p["MetricName"] != "Errors" {
			continue
		}
		if !slices.ContainsFunc(list(p["AlarmActions"]), func(v any) bool { return refOf(v) == "NotificationTopic" }) {
			continue
		}
		for _, d := range list(p["Dimensions"]) {
			if d, _ := d.(M); d["Name"] == "FunctionName" {
				alarmed[refOf(d["Value"])] = true
			}
		}
	}
	for id := range resources(tpl.Source, "AWS::Serverless::Function") {
		if !alarmed[id] {
			t.Errorf("%s has no Errors alarm that notifies the topic", id)
		}
	}
}

func TestSecurityAlarmsCountCloudTrailEventsOnlyWhenATrailLogGroupIsGiven(t *testing.T) {
	tpl := loadTemplate(t)
	doc := tpl.Source
	filters := resources(doc, "AWS::Logs::MetricFilter")
	metrics := map[string]string{} // metric name -> filter pattern
	for id, f := range filters {
		p := props(f)
		if f["Condition"] != "HasTrailLogGroup" || refOf(p["LogGroupName"]) != "CloudTrailLogGroupName" {
			t.Errorf("%s: must read the CloudTrail log group parameter under Condition HasTrailLogGroup", id)
		}
		pattern := subString(p["FilterPattern"])
		if pattern == "" {
			pattern, _ = p["FilterPattern"].(string)
		}
		for _, mt := range list(p["MetricTransformations"]) {
			mt, _ := mt.(M)
			metrics[mt["MetricName"].(string)] = pattern
		}
	}
	if p := metrics["KmsCalls"]; !strings.Contains(p, `"kms.amazonaws.com"`) || !strings.Contains(p, "${JwtMasterKey.Arn}") || !strings.Contains(p, "${SecretsKey.Arn}") {
		t.Errorf("KmsCalls must count kms.amazonaws.com events on this stack's keys, pattern %q", p)
	}
	if p := metrics["SecretReads"]; !strings.Contains(p, `"GetSecretValue"`) || !strings.Contains(p, "/${AppName}/${EnvironmentName}/") {
		t.Errorf("SecretReads must count GetSecretValue on /<app>/<env>/ secrets, pattern %q", p)
	}
	alarmed := map[string]bool{}
	for id, a := range resources(doc, "AWS::CloudWatch::Alarm") {
		p := props(a)
		if _, ok := metrics[p["MetricName"].(string)]; !ok || p["Namespace"] == "AWS/Lambda" {
			continue
		}
		if a["Condition"] != "HasTrailLogGroup" {
			t.Errorf("%s: must share Condition HasTrailLogGroup with its metric filter", id)
		}
		alarmed[p["MetricName"].(string)] = true
	}
	for _, m := range []string{"KmsCalls", "SecretReads"} {
		if !alarmed[m] {
			t.Errorf("no alarm on %s", m)
		}
	}
}
