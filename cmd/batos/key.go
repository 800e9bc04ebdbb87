package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"batos/internal/zmqbridge"
)

func init() {
	g := &group{name: "key", about: "CURVE keys, for serving beyond loopback.", subs: []subcommand{
		{"gen", "[-out PREFIX [-force]]", "make a CURVE key pair: print it, or write PREFIX.key and PREFIX.pub", runKeyGen, false},
	}}
	commands["key"] = cliCommand{"make CURVE keys for serving beyond loopback: key gen [-out PREFIX [-force]]", g.run}
}

func runKeyGen(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "key gen", "[-out PREFIX [-force]]", `Make a CURVE key pair. With -out, write PREFIX.key (the secret key, mode 0600)
and PREFIX.pub (the public key), refusing to replace existing ones unless -force;
otherwise print both.

The server runs with: batos run -listen tcp://ADDR:5555 -curve-key server.key -allow clients.txt
where clients.txt lists the public keys of the clients allowed in, one per line.
A client reaches it with: batos -curve-key client.key COMMAND (or BATOS_CURVE_KEY);
the server's public key is read from beside the image, or -curve-server-key FILE.`)
	out := fs.String("out", "", "write PREFIX.key and PREFIX.pub instead of printing")
	force := fs.Bool("force", false, "replace PREFIX.key and PREFIX.pub if they exist")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("key gen takes no arguments (-out PREFIX names the files)")
	}
	if *out != "" && !*force {
		for _, f := range []string{*out + ".key", *out + ".pub"} {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("%s exists; a new key pair would replace it, and the clients or server using it would be locked out (-force replaces it)", f)
			}
		}
	}
	pub, sec, err := zmqbridge.NewKeyPair()
	if err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintf(e.stdout, "public %s\nsecret %s\n", pub, sec)
		return nil
	}
	if err := writeKeyFile(*out+".key", sec, 0o600); err != nil {
		return err
	}
	if err := writeKeyFile(*out+".pub", pub, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s.key (secret) and %s.pub (public %s)\n", *out, *out, pub)
	return nil
}

// writeKeyFile writes a key to file with mode perm, replacing one there
// (whose mode a plain write would keep: a secret key must not stay
// readable by others).
func writeKeyFile(file, key string, perm os.FileMode) error {
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadCurve reads a server's secret key file and its allow-list of client
// public keys (one per line; blank lines and # comments ignored).
func loadCurve(keyFile, allowFile string) (*zmqbridge.Curve, error) {
	if keyFile == "" && allowFile == "" {
		return nil, nil
	}
	if keyFile == "" || allowFile == "" {
		return nil, usageError("CURVE needs both -curve-key and -allow")
	}
	secret, err := readSecretKey(keyFile)
	if err != nil {
		return nil, err
	}
	public, err := zmqbridge.PublicKey(secret)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	list, err := os.ReadFile(allowFile)
	if err != nil {
		return nil, err
	}
	c := &zmqbridge.Curve{ServerPublic: public, ServerSecret: secret}
	for _, line := range strings.Split(string(list), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) != 40 {
			return nil, fmt.Errorf("%s: %q is not a Z85 public key (40 characters)", allowFile, line)
		}
		c.ClientPublics = append(c.ClientPublics, line)
	}
	return c, nil
}

// readKey reads a Z85 CURVE key (40 characters) from a file, as batos key
// gen writes it.
func readKey(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read CURVE key: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if len(k) != 40 {
		return "", fmt.Errorf("%s does not hold a CURVE key (40 characters, as batos key gen writes)", file)
	}
	return k, nil
}

// maxPubFiles bounds the .pub files beside a key file that readSecretKey
// and readPublicKey compare it with.
const maxPubFiles = 100

// readSecretKey reads a CURVE secret key from file, refusing a public key
// given in its place: a file named *.pub, or one holding the key of a .pub
// file beside it. Any 40 Z85 characters make a valid secret key, so a
// public key is told only by where it came from; given as a secret, it
// would pass here and leave the server silent.
func readSecretKey(file string) (string, error) {
	if strings.HasSuffix(file, ".pub") {
		return "", usageError("%s is a public key file; give the secret key (batos key gen -out NAME writes NAME.key, the secret, and NAME.pub, the public key)", file)
	}
	k, err := readKey(file)
	if err != nil {
		return "", err
	}
	if pub := pubFileHolding(file, func(key string) bool { return key == k }); pub != "" {
		return "", usageError("%s holds the public key that %s holds, not a secret key; give the secret key (batos key gen -out NAME writes NAME.key, the secret)", file, pub)
	}
	return k, nil
}

// readPublicKey reads a CURVE public key from file, refusing a secret key
// given in its place: one whose public key a .pub file beside it holds.
func readPublicKey(file string) (string, error) {
	k, err := readKey(file)
	if err != nil {
		return "", err
	}
	derived, err := zmqbridge.PublicKey(k)
	if err != nil {
		return k, nil // not a key libzmq can read as a secret; the server will judge it
	}
	if pub := pubFileHolding(file, func(key string) bool { return key == derived && key != k }); pub != "" {
		return "", usageError("%s holds a secret key (the one whose public key %s holds); give the public key file, %s, and keep the secret key to its owner", file, pub, pub)
	}
	return k, nil
}

// pubFileHolding is a .pub file beside file (the one of the same name
// first) holding a key match accepts, or "" when none does.
func pubFileHolding(file string, match func(key string) bool) string {
	same := strings.TrimSuffix(file, filepath.Ext(file)) + ".pub"
	others, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "*.pub"))
	if len(others) > maxPubFiles {
		others = others[:maxPubFiles]
	}
	for _, pub := range append([]string{same}, others...) {
		if pub == file {
			continue
		}
		if k, err := readKey(pub); err == nil && match(k) {
			return pub
		}
	}
	return ""
}
