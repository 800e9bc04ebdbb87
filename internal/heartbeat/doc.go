// Package heartbeat is the image's self-audit: method telemetry kept in
// the image, a periodic audit by ALFRED from the facts the image holds,
// and proposals that become improvement cycles, installed only when a
// regression replay of recorded calls shows they do no harm.
//
// # Telemetry
//
// The VM counts every method execution in memory (vm.Telemetry); Flush
// moves what it counted into the image in one transaction, under the
// root's "telemetry" object: one record object per method (owner and
// selector) holding its counts per version of the source, and one
// samples object holding bounded, distinct recorded calls (receiver,
// arguments, result or error, snapshot), written only when new samples
// arrive. Stats reads them back.
//
// # Audits
//
// An audit gathers facts (failed cycles, failing and slow methods, the
// personas' tokens and latency, methods never called since a cycle
// installed them, image and catalog growth), asks ALFRED for findings
// and proposals against a JSON schema, and is kept as an object under
// the root's "audits", with the facts it saw, the answer, and what
// became of each proposal. The answer is recorded before any proposal is
// acted on.
//
// # Proposals
//
// A proposal names a method (receiver, selector), a kind — fix,
// optimize, simplify, document or retire — and a goal. Retire only marks
// the method deprecated. The others open an improvement cycle
// (cycle.Improvement): ROBIN writes a replacement that must pass the
// guardian, the plan's tests and the regression replay (Replayer): the
// current method and the candidate run on every recorded call, each in a
// rehearsal (a writable transaction never committed) on one snapshot of
// the current state, and must agree on the result, the output and the
// slots written, except the calls a fix targets (those failing now must
// succeed); an optimization must take fewer steps. The
// policy in the root's "heartbeat" object decides what a passing
// candidate does: "propose" (the default) holds it for a person to
// accept or reject; "auto" installs it, revertable with method revert.
// Budgets bound the tokens per audit and per day; one improvement runs
// per method at a time; a rejected method cools down before the next.
package heartbeat
