package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rotation-suite/rotation/internal/testenv"
)

// cfnLintFix is the install hint for every prerequisite of these tests.
const cfnLintFix = "pip install cfn-lint  (cfn-lint 1.x brings aws-sam-translator; into the python3 on PATH)"

// exampleTemplate is the all-in-one example, whose functions are the
// reusable stacks under stacks/, nested (see flatten).
const exampleTemplate = "examples/all-in-one/template.yaml"

// M is a decoded JSON object.
type M = map[string]any

// repoRoot is the module root (the directory holding go.mod).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// dumpScript decodes template.yaml with cfn-lint's own decoder (which knows
// the short-form intrinsic tags), runs the SAM transform the way cfn-lint
// does, and prints both documents as JSON. It uses only cfn-lint, the same
// prerequisite as the lint test.
const dumpScript = `
import copy, json, sys
from cfnlint.decode import decode
from cfnlint.template.transforms._sam import Transform
tpl, matches = decode(sys.argv[1])
if matches:
    for m in matches:
        print(m, file=sys.stderr)
    sys.exit(2)
source = copy.deepcopy(tpl)
tr = Transform(sys.argv[1], tpl, "us-east-1")
errs = tr.transform_template()
if errs:
    for m in errs:
        print(m, file=sys.stderr)
    sys.exit(3)
json.dump({"source": source, "translated": tr.template()}, sys.stdout, default=str)
`

// pythonWithCfnLint returns python3 if it can import cfn-lint and the SAM
// translator, else a MissingError.
func pythonWithCfnLint() (string, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return "", &testenv.MissingError{What: "python3 (for cfn-lint)", Fix: "apt-get install -y python3 python3-pip && " + cfnLintFix}
	}
	out, err := exec.Command(py, "-c", "import cfnlint.decode, samtranslator").CombinedOutput()
	if err != nil {
		return "", &testenv.MissingError{What: "cfn-lint with aws-sam-translator (" + lastLine(out) + ")", Fix: cfnLintFix}
	}
	return py, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// Template is the all-in-one example template before and after the SAM
// transform, each with its nested stacks flattened into it (see flatten).
// Apps holds, by application logical id, the nested stack's own document
// and the parameters the example passes it.
type Template struct {
	Source     M
	Translated M
	Parent     M // the example's own document, decoded, not flattened
	Apps       map[string]App
}

// App is one reusable stack as the example nests it.
type App struct {
	Location string // relative to the example
	Passed   M      // the example's parameter expressions
	Source   M      // the stack, decoded
}

var (
	tplOnce sync.Once
	tpl     *Template
	tplErr  error
)

// dump decodes and translates one template file.
func dump(py, path string) (source, translated M, err error) {
	cmd := exec.Command(py, "-c", dumpScript, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("decoding and translating %s: %v\n%s", path, err, stderr.String())
	}
	var doc struct {
		Source     M `json:"source"`
		Translated M `json:"translated"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, nil, fmt.Errorf("reading the translated %s: %v", path, err)
	}
	return doc.Source, doc.Translated, nil
}

// loadTemplate decodes and translates the all-in-one example and the
// reusable stacks it nests, and flattens them, once per test binary.
func loadTemplate(t testing.TB) *Template {
	t.Helper()
	root := repoRoot(t)
	tplOnce.Do(func() {
		py, err := pythonWithCfnLint()
		if err != nil {
			tplErr = err
			return
		}
		path := filepath.Join(root, exampleTemplate)
		src, tr, err := dump(py, path)
		if err != nil {
			tplErr = err
			return
		}
		parent := deepCopy(src).(M)
		apps := map[string]App{}
		for _, id := range sortedKeys(resources(src, "AWS::Serverless::Application")) {
			p := props(resources(src, "AWS::Serverless::Application")[id])
			loc := fmt.Sprint(p["Location"])
			nsrc, ntr, err := dump(py, filepath.Join(filepath.Dir(path), loc))
			if err != nil {
				tplErr = err
				return
			}
			passed, _ := p["Parameters"].(M)
			apps[id] = App{Location: loc, Passed: passed, Source: nsrc}
			flatten(src, id, passed, deepCopy(nsrc).(M))
			flatten(tr, id, passed, ntr)
		}
		tpl = &Template{Source: src, Translated: tr, Parent: parent, Apps: apps}
	})
	testenv.Require(t, tplErr)
	return tpl
}

// resources returns the resources of doc of type typ, by logical id.
func resources(doc M, typ string) map[string]M {
	out := map[string]M{}
	rs, _ := doc["Resources"].(M)
	for id, r := range rs {
		r, ok := r.(M)
		if ok && r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

func resource(t testing.TB, doc M, id string) M {
	t.Helper()
	rs, _ := doc["Resources"].(M)
	r, ok := rs[id].(M)
	if !ok {
		t.Fatalf("resource %s not found", id)
	}
	return r
}

func props(r M) M {
	p, _ := r["Properties"].(M)
	if p == nil {
		return M{}
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// list returns v as a list: a list as is, a scalar as a one-element list.
func list(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// isNoValue reports whether v is {"Ref": "AWS::NoValue"}.
func isNoValue(v any) bool {
	m, ok := v.(M)
	return ok && len(m) == 1 && m["Ref"] == "AWS::NoValue"
}

// branches expands Fn::If into both of its branches (dropping AWS::NoValue);
// any other value is its own single branch.
func branches(v any) []any {
	if m, ok := v.(M); ok && len(m) == 1 {
		if args, ok := m["Fn::If"].([]any); ok && len(args) == 3 {
			return append(branches(args[1]), branches(args[2])...)
		}
	}
	if isNoValue(v) {
		return nil
	}
	return []any{v}
}

// statements returns every statement of a policy document, with both
// branches of any Fn::If.
func statements(doc any) []M {
	var out []M
	for _, d := range branches(doc) {
		d, ok := d.(M)
		if !ok {
			continue
		}
		for _, s := range list(d["Statement"]) {
			for _, b := range branches(s) {
				if st, ok := b.(M); ok {
					out = append(out, st)
				}
			}
		}
	}
	return out
}

// identityStatements returns, by "<logical id>/<policy>", the statements of
// every identity policy in the translated template: the inline policies of
// roles, users and groups, and AWS::IAM::Policy / ManagedPolicy documents.
func identityStatements(doc M) map[string][]M {
	out := map[string][]M{}
	for _, typ := range []string{"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"} {
		for id, r := range resources(doc, typ) {
			for _, p := range list(props(r)["Policies"]) {
				for _, pb := range branches(p) {
					pm, _ := pb.(M)
					name := fmt.Sprint(pm["PolicyName"])
					out[id+"/"+name] = append(out[id+"/"+name], statements(pm["PolicyDocument"])...)
				}
			}
		}
	}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for id, r := range resources(doc, typ) {
			out[id] = append(out[id], statements(props(r)["PolicyDocument"])...)
		}
	}
	return out
}

// strs returns the strings in v (a string or a list), ignoring intrinsics.
func strs(v any) []string {
	var out []string
	for _, x := range list(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// subString returns the template string of {"Fn::Sub": "..."} or
// {"Fn::Sub": ["...", {...}]}, or "" if v is not a Sub.
func subString(v any) string {
	m, ok := v.(M)
	if !ok {
		return ""
	}
	switch s := m["Fn::Sub"].(type) {
	case string:
		return s
	case []any:
		if len(s) > 0 {
			str, _ := s[0].(string)
			return str
		}
	}
	return ""
}

// refOf returns the logical id of {"Ref": id}, or "".
func refOf(v any) string {
	if m, ok := v.(M); ok && len(m) == 1 {
		s, _ := m["Ref"].(string)
		return s
	}
	return ""
}

// getAttOf returns the logical id and attribute of {"Fn::GetAtt": [id, attr]}
// (or the "id.attr" string form).
func getAttOf(v any) (id, attr string) {
	m, ok := v.(M)
	if !ok || len(m) != 1 {
		return "", ""
	}
	switch g := m["Fn::GetAtt"].(type) {
	case []any:
		if len(g) == 2 {
			id, _ = g[0].(string)
			attr, _ = g[1].(string)
		}
	case string:
		id, attr, _ = strings.Cut(g, ".")
	}
	return id, attr
}

// conditionKeys returns every condition key of a statement, lower-cased,
// mapped to its value, across all operators.
func conditionKeys(st M) map[string]any {
	out := map[string]any{}
	cond, _ := st["Condition"].(M)
	for _, block := range cond {
		b, _ := block.(M)
		for k, v := range b {
			out[strings.ToLower(k)] = v
		}
	}
	return out
}

// resourceAlternatives returns the Resource lists a statement may deploy
// with: one per branch of any Fn::If (the example passes some stack
// parameters as !If [cond, !Ref X, ""]). An empty string is left out: a
// stack parameter left empty switches its statement off.
func resourceAlternatives(v any) [][]any {
	var out [][]any
	for _, b := range branches(v) {
		if s, ok := b.(string); ok && s == "" {
			continue
		}
		var alt []any
		for _, r := range list(b) {
			for _, rb := range branches(r) {
				if s, ok := rb.(string); ok && s == "" {
					continue
				}
				alt = append(alt, rb)
			}
		}
		out = append(out, alt)
	}
	return out
}
