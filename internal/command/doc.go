// Package command is every command batos serves, once: send, eval,
// inspect, history, log, undo, pack, stats, verify, methods, cycles,
// personas and the knowledge catalog. Each is a method of Service with a
// typed request and result; its arguments are checked here, and every
// error it returns has a Kind (KindOf), the same whether the command ran
// in this process or on a server.
//
// Two implementations exist and no third is needed: Local runs the
// commands on an image this process holds (through the Runtime the uvm
// provides), and a transport's client (protocol.Remote) runs them on the
// server holding it. A transport only translates its wire format to and
// from these types, so the bridge, the CLI and (later) HTTP cannot drift
// apart.
//
// # Sessions
//
// An eval may name a session (EvalRequest.Session), as a REPL does: the
// variables and top-level functions of its earlier successful evals carry
// to it. Local keeps them, so a REPL carries the same whether the CLI
// holds the image or talks to its server. Functions carry by their
// source (vm.Def), defined again before each eval. Sessions are bounded
// (MaxSessions, SessionIdle) and live only in memory.
//
// # Names
//
//   - A command is one operation of Service; a request is its arguments
//     and a result what it answers.
//   - A kind (Kind) classifies an error for every client: bad_request,
//     not_found, limit, ... (docs/protocol.md lists them). A sentinel is
//     the error value a kind stands for (ErrBadRequest, store.ErrNoSpace).
//   - The runtime (Runtime) is the awakened image the commands run on: its
//     image, VM, worker pool and cycle machine.
//   - A view (ObjectView, CycleView) is data shaped for a client to show;
//     a handle (CycleHandle) is what a client follows a cycle by.
//   - Library errors say what happened and name what a client follows (a
//     cycle by its ID); advice to run a batos command is the CLI's to add.
package command
