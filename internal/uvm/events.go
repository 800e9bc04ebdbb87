package uvm

import (
	"maps"
	"sync/atomic"

	"batos/internal/command"
	"batos/internal/image"
)

// onCommit returns the image's commit hook: it publishes each commit on
// the events sink (the topics are command's: TopicSend and the rest),
// numbered from 1 in "seq" so a subscriber can tell it lost one, then calls next, the hook the caller's image options
// had, if any.
func (u *UVM) onCommit(next func(image.Commit)) func(image.Commit) {
	var seq atomic.Int64
	return func(c image.Commit) {
		if u.events != nil {
			topic, payload := commitEvent(c)
			payload["seq"] = seq.Add(1)
			u.events(topic, payload)
		}
		if next != nil {
			next(c)
		}
	}
}

// commitEvent is a commit's topic and payload. The fields the transaction
// named come first: the commit's own keys win over them.
func commitEvent(c image.Commit) (string, map[string]any) {
	topic := c.Topic
	if topic == "" {
		topic = command.TopicOther
	}
	payload := maps.Clone(c.Fields)
	if payload == nil {
		payload = make(map[string]any, 4)
	}
	oids := make([]any, len(c.OIDs))
	for i, oid := range c.OIDs {
		oids[i] = oid
	}
	payload["tid"] = c.TID.String()
	payload["oids"] = oids
	payload["user"] = c.Meta.User
	payload["description"] = c.Meta.Description
	return topic, payload
}
