module batos

go 1.26.8

require (
	github.com/google/go-cmp v0.7.0
	go.etcd.io/bbolt v1.5.0
	golang.org/x/sys v0.50.0
)

require go.starlark.net v0.0.0-20260908191801-89a6a09411d5

require (
	github.com/neurosnap/sentences v1.1.2
	github.com/pebbe/zmq4 v1.4.0
	github.com/tinylib/msgp v1.6.5
	golang.org/x/term v0.48.0
)

require github.com/philhofer/fwd v1.2.0 // indirect
