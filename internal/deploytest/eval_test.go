package deploytest

import (
	"fmt"
	"regexp"
	"strings"
)

// evaluator resolves the intrinsic functions this template uses (Ref,
// Fn::Sub, Fn::If, Fn::Join, Fn::GetAtt and the condition functions) for one
// set of parameter values, the way CloudFormation would at deploy time.
// Resources resolve to fake, well-formed values: a secret to its ARN.
type evaluator struct {
	doc    M
	params map[string]any // string or []any of strings
}

var noValue = struct{ noValue bool }{true}

// newEvaluator takes the template's parameter defaults, overridden by set
// (a CommaDelimitedList is given comma-separated, as on the command line).
func newEvaluator(doc M, set map[string]string) *evaluator {
	e := &evaluator{doc: doc, params: map[string]any{}}
	ps, _ := doc["Parameters"].(M)
	for name, p := range ps {
		p, _ := p.(M)
		v := fmt.Sprint(p["Default"])
		if p["Default"] == nil {
			v = ""
		}
		if s, ok := set[name]; ok {
			v = s
		}
		if p["Type"] == "CommaDelimitedList" {
			var l []any
			for _, x := range strings.Split(v, ",") {
				l = append(l, x)
			}
			e.params[name] = l
		} else {
			e.params[name] = v
		}
	}
	return e
}

func (e *evaluator) ref(name string) (any, error) {
	switch name {
	case "AWS::NoValue":
		return noValue, nil
	case "AWS::Region":
		return "us-east-1", nil
	case "AWS::AccountId":
		return fakeAccount, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::StackName":
		return "example-stack", nil
	}
	if v, ok := e.params[name]; ok {
		return v, nil
	}
	rs, _ := e.doc["Resources"].(M)
	r, ok := rs[name].(M)
	if !ok {
		return nil, fmt.Errorf("Ref to unknown %s", name)
	}
	switch r["Type"] {
	case "AWS::SecretsManager::Secret":
		return "arn:aws:secretsmanager:us-east-1:" + fakeAccount + ":secret:" + name + "-AbCdEf", nil
	default:
		return "ref-" + name, nil
	}
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

func (e *evaluator) eval(v any) (any, error) {
	switch v := v.(type) {
	case []any:
		var out []any
		for _, x := range v {
			r, err := e.eval(x)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	case M:
		if len(v) == 1 {
			for k, arg := range v {
				switch k {
				case "Ref":
					return e.ref(fmt.Sprint(arg))
				case "Fn::GetAtt":
					id, attr := getAttOf(v)
					return "getatt-" + id + "-" + attr, nil
				case "Fn::If":
					a, _ := arg.([]any)
					if len(a) != 3 {
						return nil, fmt.Errorf("malformed Fn::If %v", arg)
					}
					ok, err := e.condition(fmt.Sprint(a[0]))
					if err != nil {
						return nil, err
					}
					if ok {
						return e.eval(a[1])
					}
					return e.eval(a[2])
				case "Fn::Join":
					a, _ := arg.([]any)
					if len(a) != 2 {
						return nil, fmt.Errorf("malformed Fn::Join %v", arg)
					}
					items, err := e.eval(a[1])
					if err != nil {
						return nil, err
					}
					var parts []string
					for _, it := range list(items) {
						for _, x := range list(it) { // a Ref to a list parameter
							parts = append(parts, fmt.Sprint(x))
						}
					}
					return strings.Join(parts, fmt.Sprint(a[0])), nil
				case "Fn::Sub":
					return e.sub(arg)
				}
			}
		}
		out := M{}
		for k, x := range v {
			r, err := e.eval(x)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

func (e *evaluator) sub(arg any) (any, error) {
	var tmpl string
	vars := M{}
	switch a := arg.(type) {
	case string:
		tmpl = a
	case []any:
		if len(a) != 2 {
			return nil, fmt.Errorf("malformed Fn::Sub %v", arg)
		}
		tmpl, _ = a[0].(string)
		vars, _ = a[1].(M)
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		var v any
		var err error
		if x, ok := vars[name]; ok {
			v, err = e.eval(x)
		} else if id, attr, ok := strings.Cut(name, "."); ok {
			v = "getatt-" + id + "-" + attr
		} else {
			v, err = e.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return fmt.Sprint(v)
	})
	return out, firstErr
}

func (e *evaluator) condition(name string) (bool, error) {
	conds, _ := e.doc["Conditions"].(M)
	c, ok := conds[name]
	if !ok {
		return false, fmt.Errorf("unknown condition %s", name)
	}
	return e.condExpr(c)
}

func (e *evaluator) condExpr(c any) (bool, error) {
	m, ok := c.(M)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("malformed condition %v", c)
	}
	for k, arg := range m {
		a := list(arg)
		switch k {
		case "Condition":
			return e.condition(fmt.Sprint(arg))
		case "Fn::Equals":
			if len(a) != 2 {
				return false, fmt.Errorf("malformed Fn::Equals %v", arg)
			}
			l, err := e.eval(a[0])
			if err != nil {
				return false, err
			}
			r, err := e.eval(a[1])
			if err != nil {
				return false, err
			}
			return fmt.Sprint(l) == fmt.Sprint(r), nil
		case "Fn::Not":
			b, err := e.condExpr(a[0])
			return !b, err
		case "Fn::And", "Fn::Or":
			and := k == "Fn::And"
			for _, x := range a {
				b, err := e.condExpr(x)
				if err != nil {
					return false, err
				}
				if b != and {
					return b, nil
				}
			}
			return and, nil
		}
	}
	return false, fmt.Errorf("unsupported condition %v", c)
}
