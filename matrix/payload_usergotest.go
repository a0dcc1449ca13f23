package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
)

// A user's Go test packages (Options.GoTests, `kmatrix run --gotest`) are
// goTestPayloads too: each package's test binary is built once, static,
// with the user's own Go toolchain, and runs in every guest in its package
// directory with the package's files and testdata/ beside it, as `go test`
// runs it. Every test and subtest is a cell (stage behave): a t.Skip is a
// skip with its reason, never a pass.

// goPackage is what `go list` says of one package.
type goPackage struct {
	ImportPath   string
	Dir          string
	TestGoFiles  []string
	XTestGoFiles []string
	CgoFiles     []string
	Module       *struct{ Dir string }
	Error        *struct{ Err string }
}

// userGoTests makes one payload per package that patterns (as `go test`
// takes them, relative to the working directory) name and that has tests.
// A package that cannot be built gets a payload that reports the build
// error on every kernel, so the others still run.
func userGoTests(ctx context.Context, patterns, args []string, env *Env) ([]Payload, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("--gotest %s: building Go tests needs the go command, which is not in PATH: install Go", strings.Join(patterns, " "))
	}
	cmd := exec.CommandContext(ctx, goBin, append([]string{"list", "-e", "-json=ImportPath,Dir,TestGoFiles,XTestGoFiles,CgoFiles,Module,Error"}, patterns...)...)
	// Listed with cgo on: with it off, files that import "C" are left
	// out of the package silently, and a cgo package would look like one
	// without them; the build itself is static (CGO_ENABLED=0).
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("--gotest %s: go list: %v: %s", strings.Join(patterns, " "), err, strings.TrimSpace(stderr.String()))
	}
	var ps []Payload
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("--gotest: reading go list's output: %w", err)
		}
		if p.Error != nil {
			return nil, usageError{fmt.Errorf("--gotest: package %s: %s", p.ImportPath, p.Error.Err)}
		}
		if len(p.TestGoFiles)+len(p.XTestGoFiles) == 0 {
			continue // as go test does: nothing to run
		}
		name := "gotest:" + packageLabel(p)
		if len(p.CgoFiles) > 0 {
			return nil, usageError{fmt.Errorf("--gotest: package %s uses cgo (%s): a guest has no libc, so kmatrix builds test binaries static with CGO_ENABLED=0; move the cgo code behind a build tag, or test the package another way",
				p.ImportPath, strings.Join(p.CgoFiles, ", "))}
		}
		bin, err := vmtest.BuildTestBinary(ctx, p.ImportPath)
		if err != nil {
			ps = append(ps, &brokenGoTest{name: name, err: err})
			continue
		}
		rels, err := packageFiles(p.Dir)
		if err != nil {
			return nil, fmt.Errorf("--gotest: package %s: %w", p.ImportPath, err)
		}
		dir := guestDir + "/gotest/" + safeName(name)
		var files []vmtest.File
		for _, rel := range rels {
			files = append(files, vmtest.File{Host: filepath.Join(p.Dir, rel), Guest: dir + "/" + filepath.ToSlash(rel)})
		}
		// KMATRIX_GUEST=1 lets a test that needs a kernel of the matrix skip
		// elsewhere (on a developer's host).
		importPath := p.ImportPath
		binaryFor := perArch(func(ctx context.Context, arch string) (string, error) {
			if arch == "amd64" {
				return bin, nil
			}
			// Built for another arch's guests when a kernel of it runs;
			// a compile error there (an arch-specific file, say) is the
			// package's build-error on those kernels, as on amd64.
			bin, err := vmtest.BuildTestBinaryFor(ctx, arch, importPath)
			if err != nil {
				return "", &testBuildError{err}
			}
			return bin, nil
		})
		ps = append(ps, &goTestPayload{name: name, binaryFor: binaryFor, subtests: true, args: args, dir: dir, files: files,
			env: []string{"KMATRIX_GUEST=1"}})
	}
	if len(ps) == 0 {
		return nil, usageError{fmt.Errorf("--gotest %s: no package with tests matches", strings.Join(patterns, " "))}
	}
	return ps, nil
}

// packageLabel names a package for reports: its directory relative to its
// module ("./probe"), else its import path.
func packageLabel(p goPackage) string {
	if p.Module != nil && p.Module.Dir != "" {
		if rel, err := filepath.Rel(p.Module.Dir, p.Dir); err == nil && !strings.HasPrefix(rel, "..") {
			if rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
	}
	return p.ImportPath
}

// packageFiles are the files a package's tests may read at run time,
// relative to its directory: its own files (not its Go sources) and its
// testdata/ tree, which is what `go test` leaves beside a test binary.
func packageFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if rel == "." || rel == "testdata" || strings.HasPrefix(rel, "testdata"+string(filepath.Separator)) {
				return nil
			}
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || strings.HasSuffix(rel, ".go") && !strings.Contains(rel, string(filepath.Separator)) {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	return files, err
}

// testBuildError is a user package's test binary that did not build for
// one arch's guests.
type testBuildError struct{ err error }

func (e *testBuildError) Error() string { return e.err.Error() }
func (e *testBuildError) Unwrap() error { return e.err }

// brokenGoTest is a package whose test binary did not build: the user's
// compile error, the same on every kernel, as a build-error cell.
type brokenGoTest struct {
	name string
	err  error
}

func (p *brokenGoTest) Name() string { return p.name }
func (p *brokenGoTest) Checks() []Check {
	return []Check{{Name: "build", Stage: outcome.StageBuild, Doc: "the package's test binary compiles (go test -c, CGO_ENABLED=0)"}}
}

func (p *brokenGoTest) Prepare(_ context.Context, k *kernels.Kernel, _ *Env) (*Plan, error) {
	msg := p.err.Error()
	first := firstLine(msg)
	for _, l := range strings.Split(msg, "\n") {
		// The compiler's first "file.go:line:col: message".
		if t := strings.TrimSpace(l); strings.Contains(t, ".go:") && !strings.HasPrefix(t, "#") {
			first = t
			break
		}
	}
	return &Plan{Cells: []report.Cell{{Kernel: k.Name, Payload: p.name, Check: "build", Stage: outcome.StageBuild,
		Outcome: outcome.BuildError, Evidence: report.Evidence{Message: first, Log: msg}}}}, nil
}
