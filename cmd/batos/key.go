package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"batos/internal/zmqbridge"
)

func init() {
	commands["key"] = cliCommand{"make CURVE keys for serving beyond loopback: key gen [-out PREFIX]", runKey}
}

func runKey(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "gen" {
		return usageError("batos key gen [-out PREFIX]")
	}
	fs := flags(e, "key gen", "[-out PREFIX]", `Make a CURVE key pair. With -out, write PREFIX.key (the secret key, mode 0600)
and PREFIX.pub (the public key); otherwise print both.

The server runs with: batos run -listen tcp://ADDR:5555 -curve-key server.key -allow clients.txt
where clients.txt lists the public keys of the clients allowed in, one per line.`)
	out := fs.String("out", "", "write PREFIX.key and PREFIX.pub instead of printing")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	pub, sec, err := zmqbridge.NewKeyPair()
	if err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintf(e.stdout, "public %s\nsecret %s\n", pub, sec)
		return nil
	}
	if err := os.WriteFile(*out+".key", []byte(sec+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(*out+".pub", []byte(pub+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s.key (secret) and %s.pub (public %s)\n", *out, *out, pub)
	return nil
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
	sec, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	secret := strings.TrimSpace(string(sec))
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
