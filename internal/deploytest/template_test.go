package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/internal/testenv"
)

// runCfnLint lints a template with the informational rules included and
// returns the parseable report and the exit status.
func runCfnLint(t *testing.T, path string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		testenv.Require(t, &testenv.MissingError{What: "cfn-lint", Fix: cfnLintFix})
	}
	cmd := exec.Command(bin, "--format", "parseable", "--include-checks", "I", "--", path)
	cmd.Dir = filepath.Dir(path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// withDefaults returns the template text with the Default of each named
// parameter replaced, so that cfn-lint (which checks defaults against types,
// patterns and allowed values) also sees the optional features switched on.
var numeric = regexp.MustCompile(`^[0-9]+$`)

func withDefaults(t *testing.T, text string, defaults map[string]string) string {
	t.Helper()
	for _, name := range sortedKeys(defaults) {
		re := regexp.MustCompile(`(?m)^(  ` + regexp.QuoteMeta(name) + `:\n(?:    .*\n)*?    Default: ).*$`)
		if !re.MatchString(text) {
			t.Fatalf("parameter %s with a Default not found", name)
		}
		v := strconv.Quote(defaults[name])
		if numeric.MatchString(defaults[name]) {
			v = defaults[name] // a Number parameter's AllowedValues are numbers
		}
		text = re.ReplaceAllString(text, "${1}"+v)
	}
	return text
}

func TestTemplateLintsCleanWithCfnLint(t *testing.T) {
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, exampleTemplate))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		defaults map[string]string
	}{
		{"defaults", nil},
		{"every optional feature on", map[string]string{
			"DbHost":                  "db.example.internal",
			"DbUserPair":              "app_blue,app_green",
			"SubnetIds":               "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
			"SecurityGroupIds":        "sg-0123456789abcdef0",
			"NotificationEmail":       "ops@example.com",
			"CloudTrailLogGroupName":  "example-trail",
			"JwtSignerPrincipalArns":  "arn:aws:iam::123456789012:role/example-signer",
			"ApiKeyRegisterUrl":       "https://keys.example.internal/register",
			"ApiKeyTestUrl":           "https://api.example.internal/whoami",
			"DbMasterSecretArn":       "arn:aws:secretsmanager:us-east-1:123456789012:secret:example-master-AbCdEf",
			"DbMasterSecretKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(root, exampleTemplate)
			if tc.defaults != nil {
				path = filepath.Join(filepath.Dir(filepath.Join(root, exampleTemplate)), fmt.Sprintf(".lint-%d.yaml", os.Getpid()))
				defer os.Remove(path)
				if err := os.WriteFile(path, []byte(withDefaults(t, string(src), tc.defaults)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out, err := runCfnLint(t, path)
			if err != nil || strings.TrimSpace(out) != "" {
				t.Fatalf("cfn-lint must report nothing; got %v:\n%s", err, out)
			}
		})
	}
}

func TestFunctionsAreArm64ProvidedAl2023BuiltByMakefile(t *testing.T) {
	tpl := loadTemplate(t)
	fns := resources(tpl.Translated, "AWS::Lambda::Function")
	if len(fns) < 3 {
		t.Fatalf("want at least the three rotation functions, got %v", sortedKeys(fns))
	}
	for _, id := range sortedKeys(fns) {
		fn := fns[id]
		p := props(fn)
		if p["Runtime"] != "provided.al2023" {
			t.Errorf("%s: Runtime %v, want provided.al2023", id, p["Runtime"])
		}
		if a := list(p["Architectures"]); len(a) != 1 || a[0] != "arm64" {
			t.Errorf("%s: Architectures %v, want [arm64]", id, a)
		}
		if p["Handler"] != "bootstrap" {
			t.Errorf("%s: Handler %v, want bootstrap", id, p["Handler"])
		}
		if md, _ := fn["Metadata"].(M); md["BuildMethod"] != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod %v, want makefile", id, md["BuildMethod"])
		}
		// 128–256 MB; jwtrotate gets 1 GiB only when it must generate
		// RSA-3072 keys (seconds of CPU per key at 256 MB).
		mems := []any{p["MemorySize"]}
		if f, ok := p["MemorySize"].(M); ok {
			if args := list(f["Fn::If"]); len(args) == 3 && args[0] == "JwtRotateRsa3072" && id == "JwtRotateFunction" {
				if big, _ := args[1].(float64); big != 1024 {
					t.Errorf("%s: MemorySize for RSA-3072 %v, want 1024", id, args[1])
				}
				mems = []any{args[2]}
			}
		}
		for _, m := range mems {
			if mem, _ := m.(float64); mem < 128 || mem > 256 {
				t.Errorf("%s: MemorySize %v, want 128-256", id, p["MemorySize"])
			}
		}
		if to, _ := p["Timeout"].(float64); to <= 0 || to > 30 {
			t.Errorf("%s: Timeout %v, want at most 30 s (Secrets Manager runs the steps back to back)", id, p["Timeout"])
		}
		if id, attr := getAttOf(p["Role"]); id == "" || attr != "Arn" {
			t.Errorf("%s: Role must be the function's own role from this template, got %v", id, p["Role"])
		}
	}
}

// functionPackages maps each function of the template to the package its
// bootstrap is built from.
var functionPackages = map[string]string{
	"DbRotateFunction":      "./functions/dbrotate",
	"JwtRotateFunction":     "./functions/jwtrotate",
	"ApiKeyRotateFunction":  "./functions/apikeyrotate",
	"WebhookRotateFunction": "./functions/apikeyrotate",
}

// The Makefile belongs to the build, but sam build fails without a
// build-<LogicalId> target for every BuildMethod: makefile function, so the
// template and the Makefile are checked together.
func TestEveryMakefileFunctionHasABuildTargetProducingAnArm64Bootstrap(t *testing.T) {
	tpl := loadTemplate(t)
	mk, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatalf("sam build with BuildMethod: makefile needs a Makefile next to CodeUri: %v", err)
	}
	// arm64 unless the builder asks otherwise (GOARCH_LAMBDA=amd64 for an x86_64 stack).
	if !regexp.MustCompile(`(?m)^GOARCH_LAMBDA \?= arm64$`).Match(mk) {
		t.Error("Makefile must default GOARCH_LAMBDA to arm64")
	}
	for id, fn := range resources(tpl.Source, "AWS::Serverless::Function") {
		if md, _ := fn["Metadata"].(M); md["BuildMethod"] != "makefile" {
			continue
		}
		// A rule naming the target, alone or among others ("build-A build-B:").
		re := regexp.MustCompile(`(?m)^(?:[^\n:#]*[ \t])?build-` + regexp.QuoteMeta(id) + `(?:[ \t][^\n:]*)?:[^\n]*\n((?:\t[^\n]*\n?)*)`)
		m := re.FindSubmatch(mk)
		if m == nil {
			t.Errorf("Makefile has no target build-%s (sam build runs it for %s)", id, id)
			continue
		}
		recipe := string(m[1])
		if pkg, ok := functionPackages[id]; !ok {
			t.Errorf("%s: no known package; add it to functionPackages", id)
		} else if !strings.Contains(recipe, pkg) {
			t.Errorf("build-%s must build %s:\n%s", id, pkg, recipe)
		}
		for _, want := range []string{"$(ARTIFACTS_DIR)/bootstrap", "GOOS=linux", "GOARCH=$(GOARCH_LAMBDA)", "CGO_ENABLED=0"} {
			if !strings.Contains(recipe, want) {
				t.Errorf("build-%s: recipe lacks %q:\n%s", id, want, recipe)
			}
		}
		if !strings.Contains(recipe, "lambda.norpc") && !strings.Contains(recipe, "$(LAMBDA_FLAGS)") {
			t.Errorf("build-%s: recipe lacks -tags lambda.norpc:\n%s", id, recipe)
		}
	}
}

func TestFunctionEnvironmentMatchesWhatTheFunctionsRead(t *testing.T) {
	tpl := loadTemplate(t)
	common := []string{"LOG_LEVEL", "SNS_TOPIC_ARN"}
	want := map[string][]string{
		"DbRotateFunction":      {"EXCLUDE_CHARACTERS", "PASSWORD_LENGTH", "DB_CA_BUNDLE_FILE", "OUTGOING_USER_GRACE"},
		"JwtRotateFunction":     {"JWT_KMS_KEY_ARN", "JWT_ALGORITHM", "JWT_MAX_TOKEN_LIFETIME", "JWT_CLOCK_SKEW", "JWT_SIGNER_CACHE", "JWT_MIN_PUBLISH", "JWT_PUBLIC_JWKS_SECRET_ARN"},
		"ApiKeyRotateFunction":  {"APIKEY_KIND", "APIKEY_PREFIX", "APIKEY_OVERLAP", "APIKEY_MAX_AGE", "APIKEY_VERIFIER_SECRET_ARN", "APIKEY_PEPPER_SECRET_ARN", "APIKEY_REGISTER_URL", "APIKEY_TEST_URL"},
		"WebhookRotateFunction": {"APIKEY_KIND", "APIKEY_PREFIX", "APIKEY_OVERLAP", "APIKEY_MAX_AGE", "APIKEY_VERIFIER_SECRET_ARN"},
	}
	for _, id := range sortedKeys(want) {
		env, _ := props(resource(t, tpl.Translated, id))["Environment"].(M)
		vars, _ := env["Variables"].(M)
		for _, name := range append(slices.Clone(common), want[id]...) {
			if _, ok := vars[name]; !ok {
				t.Errorf("%s: environment lacks %s", id, name)
			}
		}
		// A switch that turns TLS off must never be set by the template.
		if _, ok := vars["ALLOW_PLAINTEXT_DB_CONNECTIONS"]; ok {
			t.Errorf("%s: ALLOW_PLAINTEXT_DB_CONNECTIONS must not be set by the template", id)
		}
	}
	p, _ := tpl.Source["Parameters"].(M)
	if tls, _ := p["DbTlsMode"].(M); tls["Default"] != "verify-full" || slices.ContainsFunc(list(tls["AllowedValues"]), func(v any) bool { return v == "disable" || v == "require" }) {
		t.Errorf("DbTlsMode must default to verify-full and offer only verifying modes: %v", tls)
	}
}

func TestRotationSchedulesDefaultToThirtyDaysForDatabaseNinetyForKeys(t *testing.T) {
	tpl := loadTemplate(t)
	params, _ := tpl.Source["Parameters"].(M)
	want := map[string]string{
		"DbRotationSchedule":      "rate(30 days)",
		"JwtRotationSchedule":     "rate(90 days)",
		"ApiKeyRotationSchedule":  "rate(90 days)",
		"WebhookRotationSchedule": "rate(90 days)",
	}
	for _, id := range sortedKeys(want) {
		rules, _ := props(resource(t, tpl.Source, id))["RotationRules"].(M)
		param := refOf(rules["ScheduleExpression"])
		if param == "" {
			t.Errorf("%s: RotationRules.ScheduleExpression must be a parameter, got %v", id, rules["ScheduleExpression"])
			continue
		}
		if def, _ := params[param].(M); def["Default"] != want[id] {
			t.Errorf("%s: parameter %s defaults to %v, want %s", id, param, def["Default"], want[id])
		}
		if rules["Duration"] == nil {
			t.Errorf("%s: RotationRules.Duration missing", id)
		}
		if rules["AutomaticallyAfterDays"] != nil {
			t.Errorf("%s: use ScheduleExpression, not AutomaticallyAfterDays", id)
		}
	}
}

func TestEveryRotationScheduleDependsOnAScopedInvokePermissionForItsFunction(t *testing.T) {
	tpl := loadTemplate(t)
	doc := tpl.Source
	scheds := resources(doc, "AWS::SecretsManager::RotationSchedule")
	if len(scheds) == 0 {
		t.Fatal("no RotationSchedule in the template")
	}
	perms := resources(doc, "AWS::Lambda::Permission")
	for _, id := range sortedKeys(scheds) {
		s := scheds[id]
		fnID, _ := getAttOf(props(s)["RotationLambdaARN"])
		secretID := refOf(props(s)["SecretId"])
		if fnID == "" || secretID == "" {
			t.Errorf("%s: RotationLambdaARN must be !GetAtt <function>.Arn and SecretId !Ref <secret>", id)
			continue
		}
		// A schedule is created after the permission: by DependsOn, or
		// because it names the function through an output of the nested
		// stack that creates the permission (CloudFormation creates the
		// schedule only once that whole stack is complete).
		deps := strs(s["DependsOn"])
		if ps, ok := resource(t, tpl.Parent, id)["Properties"].(M); ok {
			if app, attr := getAttOf(ps["RotationLambdaARN"]); strings.HasPrefix(attr, "Outputs.") && tpl.Apps[app].Location != "" {
				for pid := range perms {
					if strings.HasPrefix(pid, app) && !slices.Contains(deps, pid) {
						deps = append(deps, pid)
					}
				}
			}
		}
		found := false
		for _, dep := range deps {
			p, ok := perms[dep]
			if !ok {
				continue
			}
			pp := props(p)
			permFn, _ := getAttOf(pp["FunctionName"])
			if permFn == "" {
				permFn = refOf(pp["FunctionName"])
			}
			switch {
			case permFn != fnID:
				t.Errorf("%s depends on %s, which is for %s, not %s", id, dep, permFn, fnID)
			case pp["Principal"] != "secretsmanager.amazonaws.com" || pp["Action"] != "lambda:InvokeFunction":
				t.Errorf("%s: must let secretsmanager.amazonaws.com lambda:InvokeFunction", dep)
			case refOf(pp["SourceAccount"]) != "AWS::AccountId":
				t.Errorf("%s: SourceAccount must be AWS::AccountId (confused deputy)", dep)
			case !pinnedTo(pp["SourceArn"], secretID):
				t.Errorf("%s: SourceArn must be the rotated secret %s, got %v", dep, secretID, pp["SourceArn"])
			case p["Condition"] != nil && p["Condition"] != s["Condition"]:
				t.Errorf("%s must exist whenever %s does (no Condition, or the same one)", dep, id)
			default:
				found = true
			}
		}
		if !found {
			t.Errorf("%s: must DependsOn the AWS::Lambda::Permission that lets Secrets Manager invoke %s", id, fnID)
		}
	}
}

// pinnedTo reports whether a permission's SourceArn is the secret: every
// branch of it that is set at all (the example passes "" where the
// schedule, and so the secret, does not exist either).
func pinnedTo(v any, secretID string) bool {
	bs := branches(v)
	n := 0
	for _, b := range bs {
		if s, ok := b.(string); ok && s == "" {
			continue
		}
		if refOf(b) != secretID {
			return false
		}
		n++
	}
	return n > 0
}

// Identity policies never grant on every resource; the one exception the
// rotation contract allows is secretsmanager:GetRandomPassword, which has no
// resource (and which these functions do not use).
func TestNoIdentityPolicyGrantsOnEveryResource(t *testing.T) {
	tpl := loadTemplate(t)
	all := identityStatements(tpl.Translated)
	if len(all) == 0 {
		t.Fatal("no identity policies found")
	}
	for _, name := range sortedKeys(all) {
		for _, st := range all[name] {
			if st["Effect"] != "Allow" {
				continue
			}
			if !slices.Contains(strs(st["Resource"]), "*") && st["NotResource"] == nil {
				continue
			}
			acts := strs(st["Action"])
			if len(acts) == 1 && acts[0] == "secretsmanager:GetRandomPassword" {
				continue
			}
			t.Errorf("%s: statement %v allows %v on Resource '*'", name, st["Sid"], acts)
		}
	}
}

// AWSLambdaVPCAccessExecutionRole (ENI actions on '*', which cannot be
// scoped) is attached only when the functions are placed in a VPC.
func TestVpcAccessPolicyOnlyWhenSubnetsAreGiven(t *testing.T) {
	tpl := loadTemplate(t)
	roles := resources(tpl.Translated, "AWS::IAM::Role")
	for _, id := range sortedKeys(roles) {
		mp := props(roles[id])["ManagedPolicyArns"]
		if mp == nil {
			continue
		}
		ifArgs, _ := mp.(M)["Fn::If"].([]any)
		if len(ifArgs) != 3 || !vpcCondition(tpl, ifArgs[0]) || !isNoValue(ifArgs[2]) {
			t.Errorf("%s: ManagedPolicyArns must be !If [HasVpc, [VPC access], !Ref AWS::NoValue], got %v", id, mp)
			continue
		}
		for _, arn := range list(ifArgs[1]) {
			if !strings.HasSuffix(subString(arn), ":iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole") {
				t.Errorf("%s: unexpected managed policy %v", id, arn)
			}
		}
	}
	fns := resources(tpl.Translated, "AWS::Lambda::Function")
	for _, id := range sortedKeys(fns) {
		vc, _ := props(fns[id])["VpcConfig"].(M)
		if vc == nil {
			continue
		}
		ifArgs, _ := vc["Fn::If"].([]any)
		if len(ifArgs) != 3 || !vpcCondition(tpl, ifArgs[0]) || !isNoValue(ifArgs[2]) {
			t.Errorf("%s: VpcConfig must be conditional on HasVpc, got %v", id, vc)
		}
	}
	if len(fns) == 0 {
		t.Error("no functions")
	}
}

// vpcCondition reports whether name is a HasVpc condition (the example's
// or a nested stack's) that tests the example's SubnetIds parameter.
func vpcCondition(tpl *Template, name any) bool {
	n, _ := name.(string)
	conds, _ := tpl.Source["Conditions"].(M)
	c, ok := conds[n]
	if !ok || !strings.HasSuffix(n, "HasVpc") {
		return false
	}
	b, _ := json.Marshal(c)
	return strings.Contains(string(b), `{"Ref":"SubnetIds"}`)
}

func TestDeployGuideDescribesEveryParameterAndBuildTarget(t *testing.T) {
	tpl := loadTemplate(t)
	guide, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	params, _ := tpl.Source["Parameters"].(M)
	for _, name := range sortedKeys(params) {
		if !bytes.Contains(guide, []byte("`"+name+"`")) {
			t.Errorf("docs/deploy.md does not describe parameter %s", name)
		}
	}
	for id := range resources(tpl.Source, "AWS::Serverless::Function") {
		if !bytes.Contains(guide, []byte("`build-"+id+"`")) {
			t.Errorf("docs/deploy.md does not name the build target build-%s", id)
		}
	}
}
