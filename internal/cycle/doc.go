// Package cycle is the cognitive cycle: a message nothing understands
// becomes a mission that the personas turn into a new method, through a
// persisted state machine.
//
// # Names
//
// A mission is what a cycle is for: a message (vm.Message: receiver,
// selector, arguments) that found no method, or a brief for an object,
// whose selector the plan names. A step is one recorded model answer,
// and its step kind (StepKind) says which stage asked for it: StepPlan,
// StepDelegate or StepSynthesize. A failure is why a synthesis attempt
// was refused, and its failure kind (FailureKind) says which check
// refused it: FailureParse, FailureAudit, FailureTest or FailureCall. A
// delivery is a message the cycle sends itself once the method is
// installed, and its delivery state (DeliveryState) says where it
// stands: DeliveryPending, then DeliveryAnswered, DeliveryFailed,
// DeliveryForwarded or DeliveryAbandoned. The strings of these kinds and
// states are their recorded form in the image.
//
// # States
//
//	IDLE → DECOMPOSING → DELEGATING → SYNTHESIZING → VALIDATING → COMPLETE
//	                                       ↑_______________|         FAILED
//
// IDLE: queued, waiting for a slot (Options.MaxRunning cycles run at
// once). DECOMPOSING: BRICK answers a JSON plan (intent, sub-questions
// for personas, signature, tests); an unparsable plan is asked again, up
// to Options.PlanTries times. DELEGATING: the sub-questions go to their
// personas concurrently. SYNTHESIZING: ROBIN writes the method and its
// tests. VALIDATING: the guardian audits the source (vm.Audit; generated
// code may not use method(), so it cannot install unaudited code), then each
// test and the original call run in a transaction of its own that is
// always rolled back; a failure goes back to SYNTHESIZING verbatim, with
// a hint for the Python habit behind it (vm.Hint) and, when another
// attempt follows, ALFRED's review of the failed candidate (review.go),
// up to Options.MaxAttempts attempts. COMPLETE installs the method with
// its provenance (and the previous version, for revert); FAILED records
// why and installs nothing.
//
// A plan may say the message must be refused (Plan.Refuses) and that a
// test must fail (Test.Fails): the original call and such tests pass only
// by failing with a method's error that mentions the plan's words, and
// the message's sender, sent again once the method is installed, gets
// that error.
//
// # Durability
//
// A cycle is an image object under the root's "cycles". Each transition
// is its own transaction, and no model is called inside a transaction.
// Every model answer is recorded in the cycle (persona, model, tokens,
// latency) before it is used, so a cycle resumed after a crash continues
// from its last recorded step and never asks a model again for a step it
// already has. Prompts live in objects of their own, written once; the
// call's usage record is saved with the answer.
//
// # Deliveries
//
// A sender that does not wait (it took the cycle's handle) leaves its
// message with the cycle. Once the method is installed the cycle sends
// each such message for real, inside the transaction that records its
// answer: exactly once, resumed after a crash, and forwarded to the next
// cycle when it reaches yet another missing method.
package cycle
