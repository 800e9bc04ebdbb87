package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"sync"

	"batos/internal/command"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/uvm"
	"batos/internal/zmqbridge"
)

// session runs the commands on the image: opened by this process, or,
// while batos run holds it, on that server over its bridge. The user
// never has to care which.
type session struct {
	command.Service
	// local is the image this process opened, or nil when a server
	// serves it.
	local *uvm.UVM
	close func() error
}

func (s *session) Close() error { return s.close() }

// sessionMode says how a command needs the image.
type sessionMode int

const (
	// readWrite awakens the image (an existing one).
	readWrite sessionMode = iota
	// create awakens the image, creating it on first use.
	create
	// readOnly opens the image without writing to it (log, history): they
	// work on a full disk, and an unclean shutdown's log is read, not
	// replayed into the file.
	readOnly
	// toVerify opens the image read-only even when its page structure is
	// damaged, so that verify can list the damage.
	toVerify
)

// openSession opens the image at e.image as mode says, or reaches the
// server holding it.
func openSession(ctx context.Context, e *env, mode sessionMode) (*session, error) {
	u, err := awakenImage(ctx, e, mode, nil)
	if err == nil {
		return &session{Service: command.NewLocal(u, currentUser()), local: u, close: u.Close}, nil
	}
	r, rerr := reachServer(e, err)
	if rerr != nil {
		return nil, rerr
	}
	return &session{Service: r, close: r.Close}, nil
}

// awakenImage opens the image through the uvm, which creates the
// primordial image on first use (mode create) and upgrades system
// objects on later ones. opts, if set, are the uvm's options.
func awakenImage(ctx context.Context, e *env, mode sessionMode, opts *uvm.Options) (*uvm.UVM, error) {
	if _, err := os.Stat(e.image); errors.Is(err, fs.ErrNotExist) && mode != create {
		return nil, fmt.Errorf("no image at %s (create one with: batos -image %s image init, or start batos repl)", e.image, e.image)
	}
	o := uvm.Options{User: currentUser()}
	if opts != nil {
		o = *opts
	}
	switch mode {
	case readOnly:
		o.Store = &bolt.Options{ReadOnly: true}
	case toVerify:
		o.Store = &bolt.Options{ReadOnly: true, AllowDamaged: true}
	}
	u, created, err := uvm.Open(ctx, e.image, &o)
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(e.stderr, "batos: created image %s\n", e.image)
	}
	return u, nil
}

// bridgeFile is where `batos run` leaves its request endpoint, beside the
// image, for other batos processes to find it.
func bridgeFile(img string) string { return img + ".bridge" }

// reachServer connects to the server holding the image, when err says
// the image is in use and that server left its endpoint; otherwise it
// returns err.
func reachServer(e *env, err error) (*zmqbridge.Remote, error) {
	if !errors.Is(err, store.ErrInUse) {
		return nil, err
	}
	addr, rerr := os.ReadFile(bridgeFile(e.image))
	if rerr != nil {
		return nil, err // held, but not by a server we can talk to
	}
	c, derr := zmqbridge.Dial(strings.TrimSpace(string(addr)), nil)
	if derr != nil {
		return nil, fmt.Errorf("%v; and its server could not be reached: %w", err, derr)
	}
	var inUse *store.InUseError
	pid := 0
	if errors.As(err, &inUse) {
		pid = inUse.PID
	}
	return zmqbridge.NewRemote(c, pid), nil
}

// learnLocally gives an image this process opened itself the mind that
// batos run recorded, reached only when a message nothing understands
// needs it (a command that learns nothing never touches the server).
// Cycles left unfinished stay for batos run to resume. Without a recorded
// server, messages nothing understands stay errors that say how to get a
// mind; with one that does not answer, the error says so.
func learnLocally(ctx context.Context, e *env, s *session) {
	if s.local == nil {
		return // the server learns for its clients
	}
	cfg, err := mind.LoadServerConfig(ctx, s.local.DB())
	if err != nil || cfg.URL == "" {
		return
	}
	connectOnDemand(e, s.local, cfg)
}

// connectOnDemand gives u a mind on the server cfg names (or one on the
// default ports, for no URL), connected only when something needs it: a
// message nothing understands, or a text the catalog embeds. A server
// that answered is kept for the calls that follow (the catalog embeds
// file after file); one that did not is asked again the next time.
func connectOnDemand(e *env, u *uvm.UVM, cfg mind.ServerConfig) {
	cfg.APIKey = os.Getenv("BATOS_LLM_API_KEY")
	var mu sync.Mutex
	var server *mind.Server
	u.EnableMindOnDemand(func(ctx context.Context) (*mind.Server, error) {
		mu.Lock()
		defer mu.Unlock()
		if server != nil {
			return server, nil
		}
		s, err := mind.Connect(ctx, cfg)
		if err != nil {
			return nil, err
		}
		server = s
		return s, nil
	}, &mind.Options{CacheDir: cacheDir(e)})
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "batos"
}
