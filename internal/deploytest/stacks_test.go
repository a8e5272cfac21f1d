package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/internal/testenv"
)

// The reusable stacks (stacks/*.yaml) rotate secrets that already exist.
// These tests deploy nothing: every parameter combination below is linted
// by cfn-lint, translated by the SAM translator, evaluated the way
// CloudFormation would evaluate it, and its IAM statements must name
// exactly the given secrets, keys and topic — no "*" resource anywhere.

const (
	arnA   = "arn:aws:secretsmanager:us-east-1:123456789012:secret:/app/prod/x/a-AbCdEf"
	arnB   = "arn:aws:secretsmanager:us-east-1:123456789012:secret:/app/prod/x/b-GhIjKl"
	master = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234-MnOpQr"
	other  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:/app/prod/other-StUvWx"
	key1   = "arn:aws:kms:us-east-1:123456789012:key/11111111-1111-4111-8111-111111111111"
	key2   = "arn:aws:kms:us-east-1:123456789012:key/22222222-2222-4222-8222-222222222222"
	jwtKey = "arn:aws:kms:us-east-1:123456789012:key/33333333-3333-4333-8333-333333333333"
	topic  = "arn:aws:sns:us-east-1:123456789012:rotation-events"
	topicK = "arn:aws:kms:us-east-1:123456789012:key/44444444-4444-4444-8444-444444444444"
	bound  = "arn:aws:iam::123456789012:policy/team-boundary"
	alarm  = "arn:aws:sns:us-east-1:123456789012:oncall"
	prefix = "/app/prod/x/"
)

// stackOptions are each stack's optional parameters: each switched on alone
// (with the secrets named by ARN), and all together over both ways of
// naming the secrets.
var stackOptions = map[string]map[string]string{
	"dbrotate": {"SecretsKmsKeyArns": key1 + "," + key2, "MasterSecretArns": master},
	"jwtrotate": {"SecretsKmsKeyArns": key1, "JwtKmsKeyArn": jwtKey, "PublicJwksSecretArn": other,
		"JwtAlgorithm": "RS256", "JwtRsaBits": "3072"},
	"apikeyrotate": {"SecretsKmsKeyArns": key1, "PepperSecretArn": other, "RegisterUrl": "https://keys.example.com/register",
		"RegisterHmacSecretArn": master, "KeyKind": "webhook"},
}

var commonOptions = map[string]string{
	"NotificationTopicArn": topic, "NotificationTopicKmsKeyArn": topicK, "PermissionsBoundaryArn": bound,
	"AlarmActions": alarm, "Architecture": "x86_64", "LogRetentionDays": "30", "InvokeSourceArn": arnA,
	"SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210", "SecurityGroupIds": "sg-0123456789abcdef0",
}

// options that only make sense together, switched on as a group.
var together = map[string][]string{
	"NotificationTopicKmsKeyArn": {"NotificationTopicArn"},
	"SecurityGroupIds":           {"SubnetIds"},
	"SubnetIds":                  {"SecurityGroupIds"},
	"RegisterUrl":                {"RegisterHmacSecretArn"},
	"JwtRsaBits":                 {"JwtAlgorithm"},
}

type variant struct {
	stack, name string
	set         map[string]string
}

func variants() []variant {
	var out []variant
	for _, stack := range sortedKeys(stackOptions) {
		opts := map[string]string{}
		for k, v := range commonOptions {
			opts[k] = v
		}
		for k, v := range stackOptions[stack] {
			opts[k] = v
		}
		for _, naming := range []map[string]string{{"SecretArns": arnA + "," + arnB}, {"SecretNamePrefix": prefix}} {
			base := map[string]string{}
			for k, v := range naming {
				base[k] = v
			}
			if stack == "apikeyrotate" {
				base["VerifierSecretArn"] = other
			}
			how := sortedKeys(naming)[0]
			mk := func(name string, extra ...string) variant {
				set := map[string]string{}
				for k, v := range base {
					set[k] = v
				}
				for _, k := range extra {
					set[k] = opts[k]
					for _, k2 := range together[k] {
						set[k2] = opts[k2]
					}
				}
				return variant{stack, how + " " + name, set}
			}
			out = append(out, mk("only"))
			if how == "SecretArns" { // each option alone; the prefix form only bare and with everything
				for _, k := range sortedKeys(opts) {
					out = append(out, mk("+"+k, k))
				}
			}
			out = append(out, mk("everything", sortedKeys(opts)...))
		}
	}
	return out
}

// translateScript decodes and SAM-translates many templates in one process.
const translateScript = `
import copy, json, sys
from cfnlint.decode import decode
from cfnlint.template.transforms._sam import Transform
out = []
for path in sys.argv[1:]:
    tpl, matches = decode(path)
    if matches:
        print(path, matches, file=sys.stderr); sys.exit(2)
    source = copy.deepcopy(tpl)
    tr = Transform(path, tpl, "us-east-1")
    errs = tr.transform_template()
    if errs:
        print(path, errs, file=sys.stderr); sys.exit(3)
    out.append({"source": source, "translated": tr.template()})
json.dump(out, sys.stdout, default=str)
`

func TestReusableStacksLintTranslateAndPinEveryPermissionInEveryCombination(t *testing.T) {
	root := repoRoot(t)
	py, err := pythonWithCfnLint()
	testenv.Require(t, err)
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		testenv.Require(t, &testenv.MissingError{What: "cfn-lint", Fix: cfnLintFix})
	}
	dir := filepath.Join(root, "stacks", ".test-variants")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	vs := variants()
	var paths []string
	for i, v := range vs {
		src, err := os.ReadFile(filepath.Join(root, "stacks", v.stack+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		defaults := map[string]string{}
		for k, val := range v.set {
			if k != "VerifierSecretArn" { // required: no Default to replace
				defaults[k] = val
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("%03d-%s.yaml", i, v.stack))
		if err := os.WriteFile(p, []byte(withDefaults(t, string(src), defaults)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}

	// cfn-lint, once over every variant.
	cmd := exec.Command(lint, append([]string{"--format", "parseable", "--include-checks", "I", "--"}, paths...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint is not clean over the %d variants: %v\n%s", len(paths), err, out)
	}

	// The SAM translator, once over every variant.
	tr := exec.Command(py, append([]string{"-c", translateScript}, paths...)...)
	var stderr bytes.Buffer
	tr.Stderr = &stderr
	out, err := tr.Output()
	if err != nil {
		t.Fatalf("translate: %v\n%s", err, stderr.String())
	}
	var docs []struct {
		Source     M `json:"source"`
		Translated M `json:"translated"`
	}
	if err := json.Unmarshal(out, &docs); err != nil || len(docs) != len(vs) {
		t.Fatalf("translated %d of %d: %v", len(docs), len(vs), err)
	}
	for i, v := range vs {
		t.Run(v.stack+" "+v.name, func(t *testing.T) {
			checkPinned(t, v, docs[i].Translated)
		})
	}
}

func checkPinned(t *testing.T, v variant, doc M) {
	e := newEvaluator(doc, v.set)
	split := func(k string) []string {
		if v.set[k] == "" {
			return nil
		}
		return strings.Split(v.set[k], ",")
	}
	rotated := split("SecretArns")
	if p := v.set["SecretNamePrefix"]; p != "" {
		rotated = []string{"arn:aws:secretsmanager:us-east-1:" + fakeAccount + ":secret:" + p + "*"}
	}
	otherSecrets := slices.Concat(split("MasterSecretArns"), split("VerifierSecretArn"), split("PepperSecretArn"), split("PublicJwksSecretArn"), split("RegisterHmacSecretArn"))
	keys := slices.Concat(split("SecretsKmsKeyArns"), split("NotificationTopicKmsKeyArn"))
	if v.stack == "jwtrotate" {
		if k := v.set["JwtKmsKeyArn"]; k != "" {
			keys = append(keys, k)
		} else {
			keys = append(keys, "getatt-JwtKey-Arn") // the key the stack creates
		}
	}
	fnARN := "arn:aws:lambda:us-east-1:" + fakeAccount + ":function:" + v.stack
	seen := map[string]bool{}
	roles := resources(doc, "AWS::IAM::Role")
	if len(roles) != 1 {
		t.Fatalf("want one role, got %d", len(roles))
	}
	for id, r := range roles {
		ev, err := e.eval(props(r))
		if err != nil {
			t.Fatal(err)
		}
		p := ev.(M)
		if b := v.set["PermissionsBoundaryArn"]; fmt.Sprint(p["PermissionsBoundary"]) != b && !(b == "" && p["PermissionsBoundary"] == nil) {
			t.Errorf("%s: permissions boundary %v, want %q", id, p["PermissionsBoundary"], b)
		}
		for _, pol := range list(p["Policies"]) {
			for _, st := range list(pol.(M)["PolicyDocument"].(M)["Statement"]) {
				st := st.(M)
				res := strs(st["Resource"])
				if len(res) == 0 {
					t.Errorf("%s: statement %v has no resource", id, st["Sid"])
				}
				for _, a := range strs(st["Action"]) {
					for _, r := range res {
						if r == "*" || strings.HasSuffix(r, ":*") {
							t.Errorf("%s: %s on %q", id, a, r)
						}
						service, _, _ := strings.Cut(a, ":")
						var allowed []string
						switch service {
						case "secretsmanager":
							allowed = append(slices.Clone(otherSecrets), rotated...)
						case "kms":
							allowed = keys
						case "sns":
							allowed = []string{v.set["NotificationTopicArn"]}
						case "logs":
							allowed = []string{"getatt-LogGroup-Arn"}
						}
						if !slices.Contains(allowed, r) {
							t.Errorf("%s: %s on %q, which is none of the given resources %v", id, a, r, allowed)
						}
						seen[r] = true
					}
				}
				// Writing a rotated secret requires that it names this function.
				if hasAny(st, "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage") && slices.Contains(res, rotated[0]) {
					c, _ := st["Condition"].(M)
					se, _ := c["StringEquals"].(M)
					if se["secretsmanager:resource/AllowRotationLambdaArn"] != fnARN {
						t.Errorf("%s: rotating statement not bound to the function %s: %v", id, fnARN, st["Condition"])
					}
				}
				if hasAny(st, "kms:Decrypt", "kms:GenerateDataKey") {
					c, _ := st["Condition"].(M)
					if c == nil {
						t.Errorf("%s: KMS use without a condition: %v", id, st)
					}
				}
			}
		}
	}
	// Secrets Manager may invoke the function from this account only, and
	// for the one given secret when InvokeSourceArn is set.
	perms := resources(doc, "AWS::Lambda::Permission")
	if len(perms) != 1 {
		t.Errorf("want one invoke permission, got %v", sortedKeys(perms))
	}
	for id, pr := range perms {
		ev, err := e.eval(props(pr))
		if err != nil {
			t.Fatal(err)
		}
		p := ev.(M)
		if p["Principal"] != "secretsmanager.amazonaws.com" || p["SourceAccount"] != fakeAccount {
			t.Errorf("%s: principal %v, source account %v", id, p["Principal"], p["SourceAccount"])
		}
		if got, want := p["SourceArn"], v.set["InvokeSourceArn"]; (want == "" && got != nil) || (want != "" && got != want) {
			t.Errorf("%s: SourceArn %v, want %q", id, got, want)
		}
	}
	// Every given resource is used (nothing the caller passed is ignored).
	for _, r := range slices.Concat(rotated, otherSecrets, keys) {
		if !seen[r] {
			t.Errorf("the role never names the given %s", r)
		}
	}
	if tp := v.set["NotificationTopicArn"]; tp != "" && !seen[tp] {
		t.Errorf("the role cannot publish to the given topic")
	}
	// The function: architecture, VPC, outputs.
	fns := resources(doc, "AWS::Lambda::Function")
	for id, f := range fns {
		ev, err := e.eval(props(f))
		if err != nil {
			t.Fatal(err)
		}
		p := ev.(M)
		arch := v.set["Architecture"]
		if arch == "" {
			arch = "arm64"
		}
		if got := strs(p["Architectures"]); len(got) != 1 || got[0] != arch {
			t.Errorf("%s: architectures %v, want %s", id, got, arch)
		}
		_, hasVpc := p["VpcConfig"]
		if hasVpc != (v.set["SubnetIds"] != "") {
			t.Errorf("%s: VpcConfig %v with SubnetIds %q", id, p["VpcConfig"], v.set["SubnetIds"])
		}
	}
	outs, _ := doc["Outputs"].(M)
	var names []string
	for k, o := range outs {
		if _, ok := o.(M)["Export"]; ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if !slices.Contains(names, "FunctionArn") || !slices.Contains(names, "RoleArn") {
		t.Errorf("exports %v lack FunctionArn or RoleArn", names)
	}
	// Created KMS keys are retained, like the secrets they protect.
	for id, k := range resources(doc, "AWS::KMS::Key") {
		if k["DeletionPolicy"] != "Retain" || k["UpdateReplacePolicy"] != "Retain" {
			t.Errorf("%s: DeletionPolicy %v / UpdateReplacePolicy %v, want Retain", id, k["DeletionPolicy"], k["UpdateReplacePolicy"])
		}
	}
}

// The examples are built only from the reusable stacks: each lints clean,
// has no function, role, invoke permission or log group of its own, every
// parameter it passes is one the nested stack declares, and every
// parameter a nested stack requires is passed.
func TestExamplesAreBuiltFromTheReusableStacks(t *testing.T) {
	for example, want := range map[string]int{"existing-secrets": 3, "all-in-one": 4} {
		t.Run(example, func(t *testing.T) { checkBuiltFromStacks(t, example, want) })
	}
}

func checkBuiltFromStacks(t *testing.T, example string, want int) {
	root := repoRoot(t)
	py, err := pythonWithCfnLint()
	testenv.Require(t, err)
	path := filepath.Join(root, "examples", example, "template.yaml")
	if out, err := runCfnLint(t, path); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("cfn-lint must report nothing; got %v:\n%s", err, out)
	}
	tr := exec.Command(py, "-c", translateScript, path)
	out, err := tr.CombinedOutput()
	if err != nil {
		t.Fatalf("translate: %v\n%s", err, out)
	}
	var docs []struct {
		Source M `json:"source"`
	}
	if err := json.Unmarshal(out, &docs); err != nil || len(docs) != 1 {
		t.Fatal(err)
	}
	for _, typ := range []string{"AWS::Serverless::Function", "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::Lambda::Permission", "AWS::Logs::LogGroup"} {
		if own := resources(docs[0].Source, typ); len(own) != 0 {
			t.Errorf("%s has its own %s %v; it must come from a reusable stack", example, typ, sortedKeys(own))
		}
	}
	apps := resources(docs[0].Source, "AWS::Serverless::Application")
	if len(apps) != want {
		t.Fatalf("want %d nested reusable stacks, got %v", want, sortedKeys(apps))
	}
	for id, app := range apps {
		loc := fmt.Sprint(props(app)["Location"])
		if !strings.HasPrefix(loc, "../../stacks/") {
			t.Errorf("%s: Location %s is not a reusable stack", id, loc)
			continue
		}
		nested, err := exec.Command(py, "-c", translateScript, filepath.Join(filepath.Dir(path), loc)).Output()
		if err != nil {
			t.Fatal(err)
		}
		var nd []struct {
			Source M `json:"source"`
		}
		if err := json.Unmarshal(nested, &nd); err != nil {
			t.Fatal(err)
		}
		declared, _ := nd[0].Source["Parameters"].(M)
		passed, _ := props(app)["Parameters"].(M)
		for k := range passed {
			if _, ok := declared[k]; !ok {
				t.Errorf("%s passes %s, which %s does not declare", id, k, loc)
			}
		}
		for k, p := range declared {
			if _, hasDefault := p.(M)["Default"]; !hasDefault && passed[k] == nil {
				t.Errorf("%s does not pass %s, which %s requires", id, k, loc)
			}
		}
	}
}

// Secrets and keys alike survive a stack's deletion or replacement, in
// every template of the repository.
func TestSecretsAndKeysAreRetainedInEveryTemplate(t *testing.T) {
	root := repoRoot(t)
	paths, _ := filepath.Glob(filepath.Join(root, "stacks", "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(root, "examples", "*", "template.yaml"))
	paths = append(paths, more...)
	if len(paths) < 5 {
		t.Fatalf("found only %v", paths)
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// A resource block: its logical id line, then its indented lines.
		blocks := strings.Split(string(src), "\n  ")
		for _, b := range blocks {
			if !strings.Contains(b, "Type: AWS::SecretsManager::Secret\n") && !strings.Contains(b, "Type: AWS::KMS::Key\n") {
				continue
			}
			if !strings.Contains(b, "DeletionPolicy: Retain") || !strings.Contains(b, "UpdateReplacePolicy: Retain") {
				t.Errorf("%s: %s is not retained", filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p), strings.SplitN(b, ":", 2)[0])
			}
		}
	}
}
