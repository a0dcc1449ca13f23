// Package probe is the example project's eBPF side: it loads the CO-RE
// object compiled from c/probe.c and attaches its programs, as an agent
// would. Its tests are the project's kernel matrix: kmatrix runs them in
// every kernel (`kmatrix run`, or `go test ./matrix/`).
package probe

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/cilium/ebpf"
)

// Regenerate with `go generate ./probe` (needs clang and llvm).
//
//go:generate sh -c "clang -O2 -g -target bpfel -I/usr/include/$(uname -m)-linux-gnu -c c/probe.c -o probe_bpfel.o && llvm-strip -g probe_bpfel.o"

//go:embed probe_bpfel.o
var object []byte

// The stats map's keys (c/probe.c).
const (
	StatExecs uint32 = iota
	StatLastTGID
	StatPackets
)

// Objects are the loaded programs and map.
type Objects struct {
	CountExecve  *ebpf.Program `ebpf:"count_execve"`
	CountIngress *ebpf.Program `ebpf:"count_ingress"`
	Stats        *ebpf.Map     `ebpf:"stats"`
}

// Load loads the object into the running kernel.
func Load() (*Objects, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(object))
	if err != nil {
		return nil, fmt.Errorf("parsing the probe object: %w", err)
	}
	var objs Objects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("loading the probe: %w", err)
	}
	return &objs, nil
}

// Stat reads one counter.
func (o *Objects) Stat(key uint32) (uint64, error) {
	var v uint64
	err := o.Stats.Lookup(key, &v)
	return v, err
}

// Close releases the programs and the map.
func (o *Objects) Close() error {
	o.CountExecve.Close()
	o.CountIngress.Close()
	return o.Stats.Close()
}
