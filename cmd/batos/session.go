package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"batos/internal/command"
	"batos/internal/mind"
	"batos/internal/protocol"
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
	r, rerr := reachServer(ctx, e, err)
	if rerr != nil {
		return nil, rerr
	}
	return &session{Service: r, close: r.Close}, nil
}

// awakenImage opens the image through the uvm, which creates the
// primordial image on first use (mode create) and upgrades system
// objects on later ones. opts, if set, are the uvm's options.
func awakenImage(ctx context.Context, e *env, mode sessionMode, opts *uvm.Options) (*uvm.UVM, error) {
	if _, err := os.Stat(e.image); !uvm.IsDatabase(e.image) && errors.Is(err, fs.ErrNotExist) && mode != create {
		return nil, fmt.Errorf("no image at %s (create one with: batos -image %s image init, or start batos repl)", e.image, e.image)
	}
	o := uvm.Options{User: currentUser()}
	if opts != nil {
		o = *opts
	}
	// A database without an image is refused as a missing file is.
	o.Existing = mode != create
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
		fmt.Fprintf(e.stderr, "batos: created image %s\n", uvm.DisplayName(e.image))
	}
	return u, nil
}

// bridgeFile is where `batos run` leaves its request endpoint, beside the
// image, for other batos processes (and any client) to find it: the
// request endpoint on the first line, then "events ADDR", the event
// endpoint, then, when it serves with CURVE, "curve-server-key KEY".
func bridgeFile(img string) string { return img + ".bridge" }

// curveLine starts the bridge file's line naming the server's CURVE
// public key.
const curveLine = "curve-server-key "

// eventsLine starts the bridge file's line naming the event endpoint.
const eventsLine = "events "

// bridgeRecord is what the bridge file says.
func bridgeRecord(reqAddr, evAddr string, c *zmqbridge.Curve) string {
	rec := reqAddr + "\n"
	if evAddr != "" {
		rec += eventsLine + evAddr + "\n"
	}
	if c != nil {
		rec += curveLine + c.ServerPublic + "\n"
	}
	return rec
}

// readBridgeFile reads the endpoint and the server's CURVE public key (""
// without CURVE) batos run recorded.
func readBridgeFile(img string) (addr, serverKey string, err error) {
	b, err := os.ReadFile(bridgeFile(img))
	if err != nil {
		return "", "", err
	}
	lines := strings.Split(string(b), "\n")
	for _, l := range lines[1:] {
		if k, ok := strings.CutPrefix(strings.TrimSpace(l), curveLine); ok {
			serverKey = strings.TrimSpace(k)
		}
	}
	return strings.TrimSpace(lines[0]), serverKey, nil
}

// curvePing bounds the first request to a CURVE server: one that refuses
// this client's key says nothing, so silence is the refusal.
var curvePing = 5 * time.Second

// reachServer connects to the server holding the image, when err says
// the image is in use and that server left its endpoint; otherwise it
// returns err. A server serving with CURVE is reached with this client's
// keys (curveOptions).
func reachServer(ctx context.Context, e *env, err error) (*protocol.Remote, error) {
	if !errors.Is(err, store.ErrInUse) {
		return nil, err
	}
	addr, serverKey, rerr := readBridgeFile(e.image)
	if rerr != nil {
		return nil, err // held, but not by a server we can talk to
	}
	var inUse *store.InUseError
	pid := 0
	if errors.As(err, &inUse) {
		pid = inUse.PID
	}
	e.server = "batos run at " + addr
	if pid > 0 {
		e.server += fmt.Sprintf(" (process %d)", pid)
	}
	opts, cerr := curveOptions(e, serverKey)
	if cerr != nil {
		return nil, cerr
	}
	c, derr := zmqbridge.Dial(addr, opts)
	if derr != nil {
		return nil, fmt.Errorf("%v; and its server could not be reached: %w", err, derr)
	}
	if opts != nil {
		pctx, cancel := context.WithTimeout(ctx, curvePing)
		_, perr := c.Call(pctx, "ping", nil)
		cancel()
		if errors.Is(perr, zmqbridge.ErrTimeout) && ctx.Err() == nil {
			c.Close()
			return nil, fmt.Errorf("the server at %s is not answering (%s, silent for %s): it may not be running, or it does not accept this client's key; if it is running, its -allow file must list this client's public key %s, and its public key must be %s", addr, serverWho(pid), curvePing, opts.ClientPublic, opts.ServerPublic)
		}
	}
	return protocol.NewRemote(c, pid), nil
}

// serverWho says which process a server is, for a message that names its
// address apart.
func serverWho(pid int) string {
	if pid > 0 {
		return fmt.Sprintf("batos run, process %d", pid)
	}
	return "batos run"
}

// curveOptions are the CURVE keys to reach a server with: the server's
// public key from -curve-server-key (or BATOS_CURVE_SERVER_KEY), else the
// one batos run recorded (recorded); this client's from the secret key
// file -curve-key (or BATOS_CURVE_KEY) names. nil: no CURVE.
func curveOptions(e *env, recorded string) (*zmqbridge.ClientOptions, error) {
	serverFile := cmp.Or(e.curveServerKey, os.Getenv("BATOS_CURVE_SERVER_KEY"))
	clientFile := cmp.Or(e.curveKey, os.Getenv("BATOS_CURVE_KEY"))
	serverKey := recorded
	if serverFile != "" {
		k, err := readPublicKey(serverFile)
		if err != nil {
			return nil, err
		}
		serverKey = k
	}
	if serverKey == "" {
		return nil, nil
	}
	if clientFile == "" {
		return nil, fmt.Errorf("%s serves with CURVE: give this client's secret key with batos -curve-key FILE COMMAND or BATOS_CURVE_KEY=FILE (batos key gen -out client makes client.key and client.pub; the server's -allow file must list client.pub's key)", e.server)
	}
	secret, err := readSecretKey(clientFile)
	if err != nil {
		return nil, err
	}
	if secret == serverKey {
		return nil, usageError("%s holds the server's public key, not this client's secret key", clientFile)
	}
	public, err := zmqbridge.PublicKey(secret)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", clientFile, err)
	}
	return &zmqbridge.ClientOptions{ServerPublic: serverKey, ClientPublic: public, ClientSecret: secret}, nil
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
