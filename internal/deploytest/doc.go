// Package deploytest holds the tests of the deployment artefacts: the
// reusable stacks (stacks/*.yaml, every parameter combination linted by
// cfn-lint, translated by the SAM translator and its IAM checked), the
// examples (examples/*/template.yaml, linted and checked structurally after
// the SAM transform, the all-in-one one with its nested stacks merged in
// with the values it passes them) and the sample events and SAM --env-vars file
// (events/), which must parse as the rotation engine and SAM read them and
// cover every function and step. It owns no product code; the templates and
// events themselves are the artefacts under test.
package deploytest
