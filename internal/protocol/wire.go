package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/vm"
)

// The wire forms of the commands' results, both ways: the server writes
// them (…Map), the client reads them back (…Of). docs/protocol.md
// documents each; change both sides together.

func resultMap(res vm.Result) map[string]any {
	return map[string]any{"value": resultValue(res), "repr": res.Repr, "output": res.Output}
}

// The keys of the tagged form of an answer that is no image value.
const (
	reprTag = "$repr"
	typeTag = "$type"
)

// resultValue is the wire form of an answer: its image value, or, when
// it has none but is not None (a function, a set, an integer beyond
// int64, a list holding one of them), {"$repr": repr, "$type": type}, so
// that nil on the wire only ever means None.
func resultValue(res vm.Result) any {
	if res.Value != nil || res.Repr == "" || res.Repr == "None" {
		return res.Value
	}
	return map[string]any{reprTag: res.Repr, typeTag: reprType(res.Repr)}
}

// reprTypes name the kind of a value that is no image value from the
// start of its Starlark repr, first match wins; vm and Starlark write
// these forms.
var reprTypes = []struct{ prefix, typ string }{
	{"<method ", "method"},       // a method bound to its receiver
	{"<message ", "message"},     // a message to a system object, taken without a call
	{"<function ", "function"},   // a def or a lambda
	{"<built-in ", "builtin"},    // a built-in function or method
	{"<primitive ", "primitive"}, // a primitive bound to its receiver
	{"<system object ", "system"},
	{"set(", "set"},
	{"[", "list"}, // a container holding such a value, or nested too deep
	{"(", "tuple"},
	{"{", "dict"},
}

// reprType is the "$type" of a value that is no image value, from its
// repr: one of reprTypes, "int" for an integer beyond int64, else
// "value".
func reprType(repr string) string {
	for _, t := range reprTypes {
		if strings.HasPrefix(repr, t.prefix) {
			return t.typ
		}
	}
	digits := strings.TrimPrefix(repr, "-")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		return "int"
	}
	return "value"
}

// resultOf reads a result back; the tagged form of an answer that is no
// image value reads as a nil Value, as the server's own Result has it.
func resultOf(x any) vm.Result {
	m, _ := x.(map[string]any)
	var v image.Value
	if !isReprForm(m["value"]) {
		v, _ = image.ValueOf(m["value"])
	}
	return vm.Result{Value: v, Repr: str(m["repr"]), Output: str(m["output"])}
}

// isReprForm reports whether x is {"$repr": string, "$type": string}.
func isReprForm(x any) bool {
	m, ok := x.(map[string]any)
	if !ok || len(m) != 2 {
		return false
	}
	_, isRepr := m[reprTag].(string)
	_, isType := m[typeTag].(string)
	return isRepr && isType
}

// objectViewMap is an inspect result: every OID a reference (ext 1)
// beside its name (nil when the object has no string name slot).
func objectViewMap(view command.ObjectView) map[string]any {
	name := func(n string) any {
		if n == "" {
			return nil
		}
		return n
	}
	slots := func(ss []command.SlotView) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			m := map[string]any{"name": s.Name, "value": s.Value, "repr": s.Repr, "owner": image.Ref(s.Owner), "owner_name": name(s.OwnerName)}
			if s.Method != "" {
				m["method"] = s.Method
				if s.Deprecated != "" {
					m["deprecated"] = s.Deprecated
				}
				if s.Meta != nil {
					m["meta"] = s.Meta
				}
			}
			out[i] = m
		}
		return out
	}
	parents := make([]any, len(view.Parents))
	for i, p := range view.Parents {
		parents[i] = map[string]any{"slot": p.Slot, "oid": image.Ref(p.OID), "name": name(p.Name)}
	}
	names := map[string]any{}
	for oid, n := range view.Names {
		names[oid.String()] = n
	}
	return map[string]any{"oid": image.Ref(view.OID), "name": name(view.Name), "parents": parents, "own": slots(view.Own), "inherited": slots(view.Inherited), "names": names}
}

// objectViewOf reads objectViewMap's form back.
func objectViewOf(x any) command.ObjectView {
	m, _ := x.(map[string]any)
	ref := func(v any) store.OID {
		r, _ := v.(image.Ref)
		return store.OID(r)
	}
	view := command.ObjectView{OID: ref(m["oid"]), Name: str(m["name"])}
	for _, x := range list(m["parents"]) {
		p, _ := x.(map[string]any)
		view.Parents = append(view.Parents, command.ParentView{Slot: str(p["slot"]), OID: ref(p["oid"]), Name: str(p["name"])})
	}
	slots := func(v any) []command.SlotView {
		var out []command.SlotView
		for _, x := range list(v) {
			s, _ := x.(map[string]any)
			val, _ := image.ValueOf(s["value"])
			var meta image.Value
			if s["meta"] != nil {
				meta, _ = image.ValueOf(s["meta"])
			}
			out = append(out, command.SlotView{Name: str(s["name"]), Value: val, Repr: str(s["repr"]), Owner: ref(s["owner"]), OwnerName: str(s["owner_name"]), Method: str(s["method"]), Deprecated: str(s["deprecated"]), Meta: meta})
		}
		return out
	}
	view.Own, view.Inherited = slots(m["own"]), slots(m["inherited"])
	if names, ok := m["names"].(map[string]any); ok && len(names) > 0 {
		view.Names = map[store.OID]string{}
		for k, n := range names {
			if oid, err := store.ParseOID(k); err == nil {
				view.Names[oid] = str(n)
			}
		}
	}
	return view
}

func txMap(t store.TxInfo) map[string]any {
	// References, as commit events and inspect give objects, so a client
	// catching up from the log handles them as it handles events.
	oids := make([]any, len(t.OIDs))
	for i, o := range t.OIDs {
		oids[i] = image.Ref(o)
	}
	ext := map[string]any{}
	for k, v := range t.Extension {
		ext[k] = v
	}
	return map[string]any{"tid": t.TID.String(), "time": t.Time.Format(time.RFC3339Nano), "user": t.User,
		"description": t.Description, "extension": ext, "oids": oids}
}

func txOf(m map[string]any) store.TxInfo {
	t := store.TxInfo{User: str(m["user"]), Description: str(m["description"])}
	t.TID, _ = store.ParseTID(str(m["tid"]))
	t.Time, _ = time.Parse(time.RFC3339Nano, str(m["time"]))
	for _, o := range list(m["oids"]) {
		if r, ok := o.(image.Ref); ok {
			t.OIDs = append(t.OIDs, store.OID(r))
		}
	}
	if ext, ok := m["extension"].(map[string]any); ok && len(ext) > 0 {
		t.Extension = map[string]string{}
		for k, v := range ext {
			t.Extension[k] = str(v)
		}
	}
	return t
}

func revisionsList(revs []command.Revision) []any {
	out := make([]any, len(revs))
	for i, r := range revs {
		m := txMap(r.Tx)
		delete(m, "oids") // the transaction's other objects are the log's to list
		m["tid"], m["size"], m["deleted"] = r.Serial.String(), int64(r.Size), r.Deleted
		out[i] = m
	}
	return out
}

func revisionsOf(x any) []command.Revision {
	var out []command.Revision
	for _, e := range list(x) {
		m, _ := e.(map[string]any)
		t := txOf(m)
		size, _ := m["size"].(int64)
		deleted, _ := m["deleted"].(bool)
		out = append(out, command.Revision{Revision: store.Revision{Serial: t.TID, Size: int(size), Deleted: deleted}, Tx: t})
	}
	return out
}

func undoneMap(u command.Undone) map[string]any {
	return map[string]any{"undone": u.Undone.String(), "tid": u.TID.String(), "description": u.Description, "objects": int64(u.Objects)}
}

func undoneOf(x any) command.Undone {
	m, _ := x.(map[string]any)
	u := command.Undone{Description: str(m["description"]), Objects: -1}
	u.Undone, _ = store.ParseTID(str(m["undone"]))
	u.TID, _ = store.ParseTID(str(m["tid"]))
	if n, ok := m["objects"].(int64); ok {
		u.Objects = int(n)
	}
	return u
}

// packedMap is a pack's result: {before, revisions, objects,
// transactions, blobs, blob_bytes} for a pack, {bytes_before,
// bytes_after} for a compaction, and ms.
func packedMap(req command.PackRequest, p command.Packed) map[string]any {
	reply := map[string]any{}
	if !req.Before.IsZero() {
		reply = map[string]any{
			"before": req.Before.UTC().Format(time.RFC3339Nano), "revisions": int64(p.Pack.Revisions), "objects": int64(p.Pack.Objects),
			"transactions": int64(p.Pack.Transactions), "blobs": int64(p.Pack.Blobs), "blob_bytes": p.Pack.BlobBytes,
		}
	}
	if req.Compact {
		reply["bytes_before"], reply["bytes_after"] = p.Compact.BytesBefore, p.Compact.BytesAfter
	}
	reply["ms"] = p.Took.Milliseconds()
	return reply
}

func packedOf(x any) command.Packed {
	m, _ := x.(map[string]any)
	count := func(k string) int64 { n, _ := m[k].(int64); return n }
	return command.Packed{
		Pack: store.PackResult{Revisions: int(count("revisions")), Objects: int(count("objects")), Transactions: int(count("transactions")),
			Blobs: int(count("blobs")), BlobBytes: count("blob_bytes")},
		Compact: store.CompactResult{BytesBefore: count("bytes_before"), BytesAfter: count("bytes_after")},
		Took:    time.Duration(count("ms")) * time.Millisecond,
	}
}

func handleMap(h command.CycleHandle) map[string]any {
	return map[string]any{"cycle": h.Cycle, "state": h.State}
}

func handleOf(x any) command.CycleHandle {
	m, _ := x.(map[string]any)
	id, _ := m["cycle"].(int64)
	return command.CycleHandle{Cycle: id, State: str(m["state"])}
}

func cancelledMap(c command.Cancelled) map[string]any {
	return map[string]any{"cycle": c.Cycle, "state": c.State, "was": c.Was}
}

func cancelledOf(x any) command.Cancelled {
	m, _ := x.(map[string]any)
	id, _ := m["cycle"].(int64)
	return command.Cancelled{Cycle: id, State: str(m["state"]), Was: str(m["was"])}
}

// cycleViewPlain is a cycle view as plain data (maps, lists, strings,
// numbers), its JSON form.
func cycleViewPlain(v *command.CycleView) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return plainMap(raw)
}

// plainNumbers turns JSON numbers into int64 or float64.
func plainNumbers(x any) any {
	switch v := x.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = plainNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = plainNumbers(v[k])
		}
	}
	return x
}

// cycleViewOf reads a cycle view back from plain data.
func cycleViewOf(x any) (*command.CycleView, error) {
	if _, ok := x.(map[string]any); !ok {
		return nil, fmt.Errorf("a cycle is a map, got %T", x)
	}
	raw, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	var v command.CycleView
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("read cycle: %w", err)
	}
	return &v, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func statsMap(st store.Stats) map[string]any {
	return map[string]any{"objects": int64(st.Objects), "revisions": int64(st.Revisions), "transactions": int64(st.Transactions),
		"blobs": int64(st.Blobs), "blob_bytes": st.BlobBytes, "file_bytes": st.FileBytes, "last_tid": st.LastTID.String()}
}

func statsOf(x any) store.Stats {
	m, _ := x.(map[string]any)
	count := func(k string) int64 { n, _ := m[k].(int64); return n }
	st := store.Stats{Objects: int(count("objects")), Revisions: int(count("revisions")), Transactions: int(count("transactions")),
		Blobs: int(count("blobs")), BlobBytes: count("blob_bytes"), FileBytes: count("file_bytes")}
	st.LastTID, _ = store.ParseTID(str(m["last_tid"]))
	return st
}

// reportMap is a verify report: the counts, and each problem with its
// fields and its text.
func reportMap(rep *store.Report) map[string]any {
	problems := make([]any, len(rep.Problems))
	for i, p := range rep.Problems {
		pm := map[string]any{"kind": p.Kind.String(), "text": p.String(), "detail": p.Detail}
		if p.OID != 0 {
			pm["oid"] = p.OID.String()
		}
		if p.TID != 0 {
			pm["tid"] = p.TID.String()
		}
		if p.Target != 0 {
			pm["target"] = p.Target.String()
		}
		if p.Digest != (store.Digest{}) {
			pm["digest"] = p.Digest.String()
		}
		if p.Bucket != "" {
			pm["bucket"] = p.Bucket
		}
		if p.Kind == store.CorruptFile {
			pm["page"] = int64(p.Page)
		}
		problems[i] = pm
	}
	return map[string]any{"ok": rep.OK(), "objects": int64(rep.Objects), "revisions": int64(rep.Revisions),
		"transactions": int64(rep.Transactions), "blobs": int64(rep.Blobs), "blob_bytes": rep.BlobBytes, "problems": problems}
}

func reportOf(x any) *store.Report {
	m, _ := x.(map[string]any)
	count := func(k string) int64 { n, _ := m[k].(int64); return n }
	rep := &store.Report{Objects: int(count("objects")), Revisions: int(count("revisions")), Transactions: int(count("transactions")),
		Blobs: int(count("blobs")), BlobBytes: count("blob_bytes")}
	for _, e := range list(m["problems"]) {
		pm, _ := e.(map[string]any)
		p := store.Problem{Kind: store.ParseProblemKind(str(pm["kind"])), Detail: str(pm["detail"]), Bucket: str(pm["bucket"])}
		p.OID, _ = store.ParseOID(str(pm["oid"]))
		p.TID, _ = store.ParseTID(str(pm["tid"]))
		p.Target, _ = store.ParseOID(str(pm["target"]))
		p.Digest, _ = store.ParseDigest(str(pm["digest"]))
		if page, ok := pm["page"].(int64); ok {
			p.Page = uint64(page)
		}
		rep.Problems = append(rep.Problems, p)
	}
	return rep
}

func methodChangeMap(c command.MethodChange) map[string]any {
	m := map[string]any{"tid": nil, "restored": c.Restored}
	if c.TID != 0 {
		m["tid"] = c.TID.String()
	}
	return m
}

func methodChangeOf(x any) command.MethodChange {
	m, _ := x.(map[string]any)
	c := command.MethodChange{Restored: str(m["restored"])}
	c.TID, _ = store.ParseTID(str(m["tid"]))
	return c
}

// personaReportPlain is a persona report as plain data, its JSON form.
func personaReportPlain(rep command.PersonaReport) (map[string]any, error) {
	raw, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	return plainMap(raw)
}

// plainMap decodes a JSON object into plain data (maps, lists, strings,
// int64 and float64).
func plainMap(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return plainNumbers(m).(map[string]any), nil
}

// personaReportOf reads a persona report back from plain data. Numbers
// in a persona's options stay as they were written (json.Number), so a
// large seed prints as an integer.
func personaReportOf(x any) (command.PersonaReport, error) {
	var rep command.PersonaReport
	if _, ok := x.(map[string]any); !ok {
		return rep, fmt.Errorf("a persona report is a map, got %T", x)
	}
	raw, err := json.Marshal(x)
	if err != nil {
		return rep, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&rep); err != nil {
		return rep, fmt.Errorf("read persona report: %w", err)
	}
	return rep, nil
}

// personaChangeMap is what persona_set stored: {"adapter": nil} or the
// adapter's {"file", "format", "name", "architecture", "tensors",
// "digest", "size"}.
func personaChangeMap(c command.PersonaChange) map[string]any {
	if c.Adapter == nil {
		return map[string]any{"adapter": nil}
	}
	a := c.Adapter
	return map[string]any{"adapter": map[string]any{"file": a.File, "format": a.Format, "name": a.Name, "architecture": a.Architecture,
		"tensors": int64(a.Tensors), "digest": a.Blob.Digest.String(), "size": a.Blob.Size}}
}

func personaChangeOf(x any) command.PersonaChange {
	m, _ := x.(map[string]any)
	a, ok := m["adapter"].(map[string]any)
	if !ok {
		return command.PersonaChange{}
	}
	tensors, _ := a["tensors"].(int64)
	size, _ := a["size"].(int64)
	imp := &mind.Imported{File: str(a["file"]), Format: str(a["format"]), Name: str(a["name"]), Architecture: str(a["architecture"]), Tensors: int(tensors)}
	imp.Blob.Digest, _ = store.ParseDigest(str(a["digest"]))
	imp.Blob.Size = size
	return command.PersonaChange{Adapter: imp}
}

func warmResultsList(rs []command.WarmResult) []any {
	out := make([]any, len(rs))
	for i, r := range rs {
		lora := make([]any, len(r.LoRA))
		for j, id := range r.LoRA {
			lora[j] = int64(id)
		}
		out[i] = map[string]any{"persona": r.Persona, "ready": r.Ready, "server": r.Server, "model": r.Model, "lora": lora, "problem": r.Problem}
	}
	return out
}

func warmResultsOf(x any) []command.WarmResult {
	var out []command.WarmResult
	for _, e := range list(x) {
		m, _ := e.(map[string]any)
		ready, _ := m["ready"].(bool)
		r := command.WarmResult{Persona: str(m["persona"]), Ready: ready, Server: str(m["server"]), Model: str(m["model"]), Problem: str(m["problem"])}
		for _, id := range list(m["lora"]) {
			n, _ := id.(int64)
			r.LoRA = append(r.LoRA, int(n))
		}
		out = append(out, r)
	}
	return out
}

// plainView is a view with JSON tags (the catalog's results) as plain
// data: its JSON form.
func plainView(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return plainMap(raw)
}

// viewOf reads a view back from its plain data; what names it in an
// error.
func viewOf[T any](x any, what string) (T, error) {
	var v T
	if _, ok := x.(map[string]any); !ok {
		return v, fmt.Errorf("the server's %s is a map, got %T", what, x)
	}
	raw, err := json.Marshal(x)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("read the server's %s: %w", what, err)
	}
	return v, nil
}
