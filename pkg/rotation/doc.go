// Package rotation is the four-step engine every rotation function shares. It
// owns the Secrets Manager rotation contract, once, for all functions:
//
//   - the event (Step, SecretId, ClientRequestToken, RotationToken), parsed
//     strictly (ParseEvent);
//   - the per-step checks: rotation enabled, the token is a version of the
//     secret, a token already AWSCURRENT is success without work (except that
//     a retried finishSecret re-runs the strategy's idempotent after-finish
//     hook while AWSPENDING is still on it), a token not AWSPENDING is a
//     terminal error;
//   - every read and write of the rotated secret: createSecret reads the
//     pending version by VersionId and AWSPENDING and only builds a value when
//     the placeholder is empty, puts it with the token as ClientRequestToken,
//     and accepts ResourceExistsException only for the identical value;
//     finishSecret moves AWSCURRENT with UpdateSecretVersionStage (AWSPREVIOUS
//     follows); the engine never removes AWSPENDING, the service does;
//   - the rotation-level invariant "nothing is promoted untested": a passing
//     testSecret moves the private label StageTested (ROTATION_TESTED) to the
//     token's version, and finishSecret refuses — a state error, nothing
//     changed — to promote a version without it (the empty placeholder, or a
//     value that never passed testSecret). The label is the proof that
//     crosses execution environments; see StageTested for why it is sound
//     and what it costs (one call per rotation);
//   - label moves that already took effect count as done (an endpoint that
//     applied a request and lost the answer makes the SDK's retry fail);
//   - the read-only probe StepProbe (probeSecret): the strategy's Test in its
//     configuration-test mode on the AWSCURRENT version, changing nothing,
//     so an operator can prove the current credential before discarding a
//     stuck rotation;
//   - the configuration test of RotateImmediately=false (testSecret on an
//     empty pending version tests the current value);
//   - a per-environment cache of version values (they never change), so a
//     warm rotation makes 8 Secrets Manager calls; labels are re-read on every
//     step;
//   - the time budget (Call), error classes (Error), redaction of every known
//     secret before an error, log line, metric or notification is built, SNS
//     notifications (Notification: one per event — exactly one
//     rotation.succeeded per promotion; a retried finishSecret that re-runs
//     the after-finish hook logs "finish-retried" and publishes only a
//     failure or warning) and CloudWatch EMF metrics (namespace
//     SecretRotation, dimensions FunctionName and Kind apart), all built in
//     one place (Reporter);
//   - a function that could not be configured (FailedHandler): every
//     invocation fails with the configuration error and is reported exactly
//     as a failed step is, so the alarms see it.
//
// A Strategy knows the target system (a database, a key store) and nothing of
// labels or storage: it builds the new value, sets it, tests it, and may act
// after the promotion (Finisher). It reaches other secrets only through the
// narrow Store it is handed.
//
// Wiring a function:
//
//	eng, err := rotation.New(rotation.Config{Secrets: sm, Strategy: s, Notifier: n})
//	lambda.Start(eng) // Engine implements lambda.Handler
//
// What the package does not own: how a value is built or made real (the
// strategies under functions/), the Lambda runtime (internal/fnmain), and the
// service's own part of a rotation (internal/driver plays it locally).
package rotation
