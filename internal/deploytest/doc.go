// Package deploytest holds the tests of the deployment artefacts: the SAM
// template (template.yaml, linted by cfn-lint and checked structurally after
// the SAM transform) and the sample events (events/), which must parse as the
// rotation engine parses Secrets Manager's events and cover every function
// and step. It owns no product code; the template and events themselves are
// the artefacts under test.
package deploytest
