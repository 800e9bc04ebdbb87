package uvm

import (
	"maps"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/store"
)

// onCommit returns the image's commit hook: it publishes each commit on
// the events sink (the topics are command's: TopicSend and the rest),
// numbered from 1 in "seq" so a subscriber can tell it lost one, then calls next, the hook the caller's image options
// had, if any.
func (u *UVM) onCommit(next func(image.Commit)) func(image.Commit) {
	return func(c image.Commit) {
		u.publishCommit(c)
		if next != nil {
			next(c)
		}
	}
}

// publishCommit publishes a commit's event, this process's or, on a
// store other processes share, another's.
func (u *UVM) publishCommit(c image.Commit) {
	if u.events == nil {
		return
	}
	topic, payload := commitEvent(c)
	payload["seq"] = u.eventSeq.Add(1)
	u.events(topic, payload)
}

// watchOtherNodes publishes the commits other processes make to a store
// they share with this one (a database's other nodes), as this process
// publishes its own: with the topic and fields they were committed with
// when their notice arrived, else as commit.other; and tells the cycle
// machine of other nodes' commits to cycles. It answers the function that
// stops it.
func (u *UVM) watchOtherNodes() func() {
	w, shared := u.store.(store.Watcher)
	if !shared {
		return func() {}
	}
	return w.WatchCommits(func(info store.TxInfo, notice []byte) {
		topic, fields := image.DecodeNotice(notice)
		if topic == cycle.CommitTopic || topic == "" {
			// A cycle moved on another node: senders waiting here look
			// again (a notice lost on the way has no topic).
			if cycles := u.observer.Load(); cycles != nil {
				id, _ := fields["id"].(int64)
				cycles.Observe(id)
			}
		}
		if u.events == nil {
			return
		}
		u.publishCommit(image.Commit{TID: info.TID, OIDs: info.OIDs, Topic: topic, Fields: fields,
			Meta: store.TxMeta{User: info.User, Description: info.Description, Extension: info.Extension}})
	})
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
