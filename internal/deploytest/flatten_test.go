package deploytest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// The all-in-one example builds its functions from the reusable stacks
// (AWS::Serverless::Application with a local Location). To check what the
// example really deploys, each nested stack is merged into the example
// ("flattened"): its resources and conditions join the example's under the
// application's logical id (DbRotate + Role = DbRotateRole, the stack's
// function becomes DbRotateFunction), every Ref or ${} of one of its
// parameters becomes the expression the example passes for it (so a
// role's Resource is the example's !Ref ApiKeyVerifierSecret, exactly as
// if written in the example), and every GetAtt of the application's
// Outputs becomes the output's value. A nested condition that the example's
// values decide whatever its parameters (one that names only resources,
// literals and pseudo parameters) is folded away, as CloudFormation would.

// flatName is the logical id a nested stack's resource or condition gets
// in the flattened example.
func flatName(app, id string) string {
	if strings.HasSuffix(id, "RotateFunction") {
		return app + "Function"
	}
	return app + id
}

type flattener struct {
	app      string
	passed   M // parameter -> the example's expression
	declared M // the nested stack's Parameters
	nested   M // the nested document
}

func (f *flattener) isParam(name string) bool { _, ok := f.declared[name]; return ok }

func (f *flattener) isResource(name string) bool {
	rs, _ := f.nested["Resources"].(M)
	_, ok := rs[name]
	return ok
}

// param is the example's expression for a parameter: what it passes,
// else the stack's default. A comma-joined list passed to a
// CommaDelimitedList parameter becomes the list of its items.
func (f *flattener) param(name string) any {
	decl, _ := f.declared[name].(M)
	v, ok := f.passed[name]
	if !ok {
		if decl["Default"] == nil {
			return ""
		}
		return fmt.Sprint(decl["Default"])
	}
	if decl["Type"] == "CommaDelimitedList" {
		return asList(v)
	}
	return deepCopy(v)
}

func asList(v any) any {
	m, ok := v.(M)
	if !ok || len(m) != 1 {
		return deepCopy(v)
	}
	if j, ok := m["Fn::Join"].([]any); ok && len(j) == 2 && j[0] == "," {
		return deepCopy(j[1])
	}
	if a, ok := m["Fn::If"].([]any); ok && len(a) == 3 {
		return M{"Fn::If": []any{a[0], asList(a[1]), asList(a[2])}}
	}
	return deepCopy(v)
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case M:
		out := M{}
		for k, x := range v {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}

var subRef = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// subst rewrites a value of the nested stack into the example's terms.
func (f *flattener) subst(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = f.subst(x)
		}
		return out
	case M:
		if len(v) == 1 {
			for k, arg := range v {
				switch k {
				case "Ref":
					name := fmt.Sprint(arg)
					switch {
					case f.isParam(name):
						return f.param(name)
					case f.isResource(name):
						return M{"Ref": flatName(f.app, name)}
					}
					return M{"Ref": name}
				case "Fn::GetAtt":
					id, attr := getAttOf(v)
					return M{"Fn::GetAtt": []any{flatName(f.app, id), attr}}
				case "Condition":
					return M{"Condition": flatName(f.app, fmt.Sprint(arg))}
				case "Fn::If":
					a, _ := arg.([]any)
					if len(a) == 3 {
						return M{"Fn::If": []any{flatName(f.app, fmt.Sprint(a[0])), f.subst(a[1]), f.subst(a[2])}}
					}
				case "Fn::Sub":
					return f.sub(arg)
				}
			}
		}
		out := M{}
		for k, x := range v {
			out[k] = f.subst(x)
		}
		return out
	}
	return v
}

func (f *flattener) sub(arg any) any {
	var tmpl string
	vars := M{}
	switch a := arg.(type) {
	case string:
		tmpl = a
	case []any:
		tmpl, _ = a[0].(string)
		if m, ok := a[1].(M); ok {
			for k, x := range m {
				vars[k] = f.subst(x)
			}
		}
	}
	n := 0
	out := subRef.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		if _, ok := vars[name]; ok {
			return m
		}
		if id, attr, ok := strings.Cut(name, "."); ok && f.isResource(id) {
			return "${" + flatName(f.app, id) + "." + attr + "}"
		}
		if f.isResource(name) {
			return "${" + flatName(f.app, name) + "}"
		}
		if !f.isParam(name) {
			return m
		}
		switch p := f.param(name).(type) {
		case string:
			return strings.ReplaceAll(p, "${", "${!")
		case M:
			if r := refOf(p); r != "" {
				return "${" + r + "}"
			}
			if id, attr := getAttOf(p); id != "" {
				return "${" + id + "." + attr + "}"
			}
			if s, ok := p["Fn::Sub"].(string); ok {
				return s
			}
			n++
			v := fmt.Sprintf("%sParam%d", f.app, n)
			vars[v] = p
			return "${" + v + "}"
		}
		return m
	})
	if len(vars) == 0 {
		return M{"Fn::Sub": out}
	}
	return M{"Fn::Sub": []any{out, vars}}
}

// flatten merges the nested document of application app (passing
// parameters passed) into doc, in place.
func flatten(doc M, app string, passed M, nested M) {
	f := &flattener{app: app, passed: passed, nested: nested}
	f.declared, _ = nested["Parameters"].(M)
	rs, _ := doc["Resources"].(M)
	delete(rs, app)
	conds, _ := doc["Conditions"].(M)
	if conds == nil {
		conds = M{}
		doc["Conditions"] = conds
	}
	nconds, _ := nested["Conditions"].(M)
	for id, c := range nconds {
		conds[flatName(app, id)] = f.subst(c)
	}
	nrs, _ := nested["Resources"].(M)
	for id, r := range nrs {
		r := f.subst(r).(M)
		if c, ok := r["Condition"].(string); ok {
			r["Condition"] = flatName(app, c)
		}
		var deps []any
		for _, d := range list(r["DependsOn"]) {
			deps = append(deps, flatName(app, fmt.Sprint(d)))
		}
		if deps != nil {
			r["DependsOn"] = deps
		}
		rs[flatName(app, id)] = r
	}
	// GetAtt <app>.Outputs.<name> anywhere in the example becomes the value.
	outs, _ := nested["Outputs"].(M)
	var replace func(v any) any
	replace = func(v any) any {
		switch v := v.(type) {
		case []any:
			for i, x := range v {
				v[i] = replace(x)
			}
		case M:
			if id, attr := getAttOf(v); id == app {
				name, _ := strings.CutPrefix(attr, "Outputs.")
				o, _ := outs[name].(M)
				return f.subst(o["Value"])
			}
			for k, x := range v {
				v[k] = replace(x)
			}
		}
		return v
	}
	for k, x := range doc {
		if k != "Parameters" {
			doc[k] = replace(x)
		}
	}
	fold(doc, app)
}

// fold replaces every Fn::If on a condition of the flattened stack that
// the example decides statically by its branch, and drops resources on
// such a condition that is false.
func fold(doc M, app string) {
	conds, _ := doc["Conditions"].(M)
	rs, _ := doc["Resources"].(M)
	params, _ := doc["Parameters"].(M)
	var static func(v any) bool
	static = func(v any) bool {
		switch v := v.(type) {
		case []any:
			for _, x := range v {
				if !static(x) {
					return false
				}
			}
		case M:
			if r := refOf(v); r != "" {
				_, isParam := params[r]
				return !isParam
			}
			if c, ok := v["Condition"].(string); ok && len(v) == 1 {
				return static(conds[c])
			}
			if a, ok := v["Fn::If"].([]any); ok && len(v) == 1 && len(a) == 3 {
				return static(conds[fmt.Sprint(a[0])]) && static(a[1]) && static(a[2])
			}
			for _, x := range v {
				if !static(x) {
					return false
				}
			}
		}
		return true
	}
	e := newEvaluator(doc, nil)
	decided := map[string]bool{}
	for name, c := range conds {
		if strings.HasPrefix(name, app) && static(c) {
			if b, err := e.condExpr(c); err == nil {
				decided[name] = b
			}
		}
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case []any:
			out := []any{}
			for _, x := range v {
				if y := walk(x); !isNoValue(y) {
					out = append(out, y)
				}
			}
			return out
		case M:
			if a, ok := v["Fn::If"].([]any); ok && len(v) == 1 && len(a) == 3 {
				if b, ok := decided[fmt.Sprint(a[0])]; ok {
					if b {
						return walk(a[1])
					}
					return walk(a[2])
				}
				v["Fn::If"] = []any{a[0], walk(a[1]), walk(a[2])}
				return v
			}
			for k, x := range v {
				y := walk(x)
				if isNoValue(y) && k != "Ref" {
					delete(v, k)
				} else {
					v[k] = y
				}
			}
		}
		return v
	}
	for id, r := range rs {
		c, _ := r.(M)["Condition"].(string)
		if b, ok := decided[c]; ok && !b {
			delete(rs, id)
		}
	}
	doc["Resources"] = walk(rs)
	doc["Outputs"] = walk(doc["Outputs"])
}

// The flattening itself: parameters become the parent's expressions (in
// Ref, in ${} and as a list), the nested resources and conditions are
// renamed, the parent's GetAtt of an output becomes its value, and a
// condition the parent's values decide is folded away.
func TestFlattenMergesANestedStackWithTheValuesItIsPassed(t *testing.T) {
	parent := M{
		"Parameters": M{"AppName": M{"Type": "String", "Default": "app"}},
		"Resources": M{
			"Key":   M{"Type": "AWS::KMS::Key"},
			"Stack": M{"Type": "AWS::Serverless::Application"},
			"Sched": M{"Type": "AWS::SecretsManager::RotationSchedule", "Properties": M{
				"RotationLambdaARN": M{"Fn::GetAtt": []any{"Stack", "Outputs.FunctionArn"}}}},
		},
	}
	passed := M{
		"FunctionName": M{"Fn::Sub": "${AppName}-fn"},
		"KeyArns":      M{"Fn::Join": []any{",", []any{M{"Fn::GetAtt": []any{"Key", "Arn"}}, "arn:other"}}},
		"Topic":        M{"Ref": "Key"},
	}
	nested := M{
		"Parameters": M{
			"FunctionName": M{"Type": "String"},
			"KeyArns":      M{"Type": "CommaDelimitedList", "Default": ""},
			"Topic":        M{"Type": "String", "Default": ""},
			"Unset":        M{"Type": "String", "Default": ""},
		},
		"Conditions": M{
			"HasTopic": M{"Fn::Not": []any{M{"Fn::Equals": []any{M{"Ref": "Topic"}, ""}}}},
			"HasUnset": M{"Fn::Not": []any{M{"Fn::Equals": []any{M{"Ref": "Unset"}, ""}}}},
		},
		"Resources": M{
			"MyRotateFunction": M{"Type": "AWS::Lambda::Function", "Properties": M{
				"FunctionName": M{"Ref": "FunctionName"},
				"Role":         M{"Fn::GetAtt": []any{"Role", "Arn"}},
				"Keys":         M{"Ref": "KeyArns"},
				"Log":          M{"Fn::Sub": "/aws/lambda/${FunctionName}/${Role.Arn}"},
				"Topic":        M{"Fn::If": []any{"HasTopic", M{"Ref": "Topic"}, M{"Ref": "AWS::NoValue"}}},
				"Extra":        M{"Fn::If": []any{"HasUnset", "x", M{"Ref": "AWS::NoValue"}}},
			}},
			"Role": M{"Type": "AWS::IAM::Role", "Condition": "HasTopic"},
		},
		"Outputs": M{"FunctionArn": M{"Value": M{"Fn::GetAtt": []any{"MyRotateFunction", "Arn"}}}},
	}
	flatten(parent, "Stack", passed, nested)
	rs := parent["Resources"].(M)
	if _, ok := rs["Stack"]; ok {
		t.Error("the application resource is still there")
	}
	fn, ok := rs["StackFunction"].(M)
	if !ok || rs["StackRole"] == nil {
		t.Fatalf("nested resources not renamed: %v", sortedKeys(rs))
	}
	p := props(fn)
	if subString(p["FunctionName"]) != "${AppName}-fn" {
		t.Errorf("FunctionName %v", p["FunctionName"])
	}
	if id, _ := getAttOf(p["Role"]); id != "StackRole" {
		t.Errorf("Role %v", p["Role"])
	}
	if keys := list(p["Keys"]); len(keys) != 2 || keys[1] != "arn:other" {
		t.Errorf("Keys %v, want the passed list", p["Keys"])
	}
	if s := subString(p["Log"]); s != "/aws/lambda/${AppName}-fn/${StackRole.Arn}" {
		t.Errorf("Log %q", s)
	}
	if refOf(p["Topic"]) != "Key" {
		t.Errorf("Topic %v: HasTopic is decided by the passed !Ref and must fold", p["Topic"])
	}
	if _, ok := p["Extra"]; ok {
		t.Errorf("Extra %v: HasUnset is false and must fold to no value", p["Extra"])
	}
	if id, attr := getAttOf(props(rs["Sched"].(M))["RotationLambdaARN"]); id != "StackFunction" || attr != "Arn" {
		t.Errorf("the output was not resolved: %v", props(rs["Sched"].(M))["RotationLambdaARN"])
	}
}
