package command

import (
	"context"

	"batos/internal/cycle"
	"batos/internal/image"
)

// The topics of commit events. Every commit of the image is published
// once, under the topic the transaction's maker named (Tx.SetTopic, or
// image.WithTopic on its context), else TopicOther, with the payload
// {"tid", "oids", "user", "description"} and the topic's own fields:
// a client that keeps objects cached drops the OIDs an event names. All
// of them begin "commit.", so a subscription to that prefix sees every
// commit.
const (
	TopicSend      = "commit.send"      // a send: "target", "selector"
	TopicEval      = "commit.eval"      // an eval
	TopicUndo      = "commit.undo"      // an undo: "undone", the TID undone
	TopicMethod    = "commit.method"    // method_set, method_revert
	TopicSlot      = "commit.slot"      // slot_remove
	TopicPersona   = "commit.persona"   // persona_set (and the adapter it imports)
	TopicModel     = "commit.model"     // model_import: the base model and its blob
	TopicCycle     = cycle.CommitTopic  // a cycle's transition, step, install or delivery: "id" where known
	TopicCatalog   = "commit.catalog"   // catalog_add, catalog_remove, catalog_reindex
	TopicAudit     = "commit.audit"     // audit_run
	TopicProposal  = "commit.proposal"  // proposal_accept, proposal_reject
	TopicHeartbeat = "commit.heartbeat" // what the scheduled heartbeat writes: audits, proposals, retirements
	TopicTelemetry = "commit.telemetry" // a telemetry flush: "methods", how many it saved
	TopicAwaken    = "commit.awaken"    // the image created or upgraded at open
	TopicOther     = "commit.other"     // a commit nothing named
)

// withTopic names the commits of the work run under ctx.
func withTopic(ctx context.Context, topic string) context.Context {
	return image.WithTopic(ctx, topic, nil)
}
