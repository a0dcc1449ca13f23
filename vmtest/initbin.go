package vmtest

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/kmatrix/kmatrix/internal/cache"
)

// The guest init is a static binary committed beside its source
// (vminit/kmatrix-init, and vminit/kmatrix-init-arm64 for arm64 guests)
// and embedded here, like package execchild's child:
// vmtest runs inside `go test` binaries of any package and inside an
// installed kmatrix binary far from a checkout, on machines without a Go
// toolchain, so nothing is compiled at run time. Go builds with -trimpath
// and fixed flags are reproducible: TestCommittedInitUpToDate rebuilds it
// and compares, so a change to vminit without `make generate` fails.
//
//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go build -trimpath "-ldflags=-s -w" -o vminit/kmatrix-init ./vminit
//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOARM64=v8.0 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go build -trimpath "-ldflags=-s -w" -o vminit/kmatrix-init-arm64 ./vminit
//go:generate sh -c "go env GOVERSION > init.sha256 && sha256sum vminit/kmatrix-init vminit/kmatrix-init-arm64 >> init.sha256"
//go:embed vminit/kmatrix-init
var initImage []byte

//go:embed vminit/kmatrix-init-arm64
var initImageArm64 []byte

// initImages are the embedded inits by guest arch.
var initImages = map[string][]byte{archAMD64: initImage, archARM64: initImageArm64}

// EnvInit names a static init to use instead of the embedded one (to try
// a changed init without regenerating). It must speak the same protocol,
// and be built for the guests' arch.
const EnvInit = "KMATRIX_VMTEST_INIT"

// vmtestCacheDir is <kmatrix cache>/vmtest.
func vmtestCacheDir() (string, error) {
	dir, err := cache.Dir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "vmtest")
	return dir, os.MkdirAll(dir, 0o755)
}

var initMemo struct {
	sync.Mutex
	path map[string]string // by arch
}

// initBinary returns the path of the guest init for arch, writing it out
// on first use.
func initBinary(ctx context.Context, arch string) (string, error) {
	if p := os.Getenv(EnvInit); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", EnvInit, err)
		}
		return p, nil
	}
	initMemo.Lock()
	defer initMemo.Unlock()
	if p := initMemo.path[arch]; p != "" {
		return p, nil
	}
	image, ok := initImages[arch]
	if !ok {
		return "", fmt.Errorf("%w: no guest init for %s", ErrInfra, arch)
	}
	dir, err := vmtestCacheDir()
	if err != nil {
		return "", err
	}
	// Content-addressed: runs share one copy, and a kmatrix of another
	// version never overwrites the init another run is using.
	sum := sha256.Sum256(image)
	target := filepath.Join(dir, "init-"+hex.EncodeToString(sum[:10]))
	unlock, err := cache.LockFile(target + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if initMemo.path == nil {
		initMemo.path = map[string]string{}
	}
	if b, err := os.ReadFile(target); err == nil && sha256.Sum256(b) == sum {
		initMemo.path[arch] = target
		return target, nil
	}
	if err := cache.WriteAtomic(target, 0o755, func(f *os.File) error {
		_, err := f.Write(image)
		return err
	}); err != nil {
		return "", fmt.Errorf("%w: writing the guest init: %v", ErrInfra, err)
	}
	initMemo.path[arch] = target
	return target, nil
}
