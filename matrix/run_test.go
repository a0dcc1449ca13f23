package matrix

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/report"
)

func cellsOf(rep *report.Report, kernel, payload, check string) []report.Cell {
	var out []report.Cell
	for _, c := range rep.Cells {
		if c.Kernel == kernel && c.Payload == payload && (check == "" || c.Check == check) {
			out = append(out, c)
		}
	}
	return out
}

// A user's object with a tcx program (Linux 6.6+) and a kprobe, and a
// module directory that does not compile on kernels before 5.14: the
// report must show each failure, classified, where it happens, and
// nowhere else. This is how we know failures are reported, not hidden.
func TestRunUserPayloads(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every catalog kernel in QEMU; run without -short")
	}
	ks := kernelstest.Default(t)
	out := t.TempDir()
	check := buildCheck(t)
	rep, err := Run(context.Background(), Options{
		BPFObjects: []string{"../bpf/testdata/tcx_kprobe_x86_bpfel.o", "../bpf/testdata/kconfig_bpfel.o", "../bpf/testdata/prog_target_bpfel.o", "../bpf/testdata/socket_hooks_bpfel.o"},
		KmodDirs:   []string{"../kmod/testdata/versionerror"},
		CheckCmd:   []string{check, "/proc/self/stat"},
		OutDir:     out,
	})
	require.NoError(t, err)
	for _, f := range []string{"report.json", "report.md", "report.html", "junit.xml"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	require.Len(t, rep.Kernels, len(ks))
	for _, k := range ks {
		tcx := cellsOf(rep, k.Name, "bpf:tcx_kprobe_x86_bpfel", "count_ingress/attach")
		require.Len(t, tcx, 1, k.Name)
		kp := cellsOf(rep, k.Name, "bpf:tcx_kprobe_x86_bpfel", "count_getpid/attach")
		require.Len(t, kp, 1, k.Name)
		assert.Equal(t, outcome.Pass, kp[0].Outcome, "%s: the kprobe attaches everywhere: %s", k.Name, kp[0].Evidence.Message)
		if k.Version.AtLeast(6, 6) {
			assert.Equal(t, outcome.Pass, tcx[0].Outcome, "%s: %s", k.Name, tcx[0].Evidence.Message)
		} else {
			assert.Equal(t, outcome.AttachError, tcx[0].Outcome, k.Name)
			assert.Contains(t, tcx[0].Evidence.Message, "6.6", k.Name)
		}

		// __kconfig externs resolve from the kernel's config, which a
		// Debian system has at /boot/config-$(uname -r): so does the guest.
		for _, check := range []string{"read_config/load", "read_config/attach", "read_config/run"} {
			c := cellsOf(rep, k.Name, "bpf:kconfig_bpfel", check)
			require.Len(t, c, 1, "%s %s", k.Name, check)
			assert.Equal(t, outcome.Pass, c[0].Outcome, "%s %s: %s", k.Name, check, c[0].Evidence.Message)
		}

		// fentry/fexit on a program of the object: loaded against it and
		// fired by it. Its called function is part of it, not a cell.
		for _, p := range []string{"target", "on_target_entry", "on_target_exit"} {
			for _, stage := range []string{"load", "attach", "run"} {
				c := cellsOf(rep, k.Name, "bpf:prog_target_bpfel", p+"/"+stage)
				require.Len(t, c, 1, "%s %s/%s", k.Name, p, stage)
				assert.Equal(t, outcome.Pass, c[0].Outcome, "%s %s/%s: %s", k.Name, p, stage, c[0].Evidence.Message)
			}
		}
		for _, c := range cellsOf(rep, k.Name, "bpf:prog_target_bpfel", "") {
			assert.NotContains(t, c.Check, "next_count", "%s: next_count is a function its caller calls, not a program", k.Name)
		}
		entry := cellsOf(rep, k.Name, "bpf:prog_target_bpfel", "on_target_entry/attach")
		assert.Equal(t, "fentry BPF program target", entry[0].Evidence.Facts["attach_point"], k.Name)

		// Hooks kmatrix sets up and fires itself (sk_lookup: 5.9+, every
		// default kernel); syscall programs exist since 5.14.
		progs := []string{"select_any", "udp_sendto", "lookup_any"}
		if k.Version.AtLeast(5, 14) {
			progs = append(progs, "from_loader")
		} else {
			c := cellsOf(rep, k.Name, "bpf:socket_hooks_bpfel", "from_loader/load")
			require.Len(t, c, 1, k.Name)
			assert.Equal(t, outcome.LoadError, c[0].Outcome, k.Name)
			assert.Contains(t, c[0].Evidence.Message, "5.14", k.Name)
		}
		for _, p := range progs {
			for _, stage := range []string{"load", "attach", "run"} {
				c := cellsOf(rep, k.Name, "bpf:socket_hooks_bpfel", p+"/"+stage)
				require.Len(t, c, 1, "%s %s/%s", k.Name, p, stage)
				assert.Equal(t, outcome.Pass, c[0].Outcome, "%s %s/%s: %s", k.Name, p, stage, c[0].Evidence.Message)
			}
		}

		chk := cellsOf(rep, k.Name, "bpf:tcx_kprobe_x86_bpfel", "check")
		require.Len(t, chk, 1, k.Name)
		assert.Equal(t, outcome.Pass, chk[0].Outcome, "%s: the host check binary runs in the guest: %s %s", k.Name, chk[0].Evidence.Message, chk[0].Evidence.Log)

		build := cellsOf(rep, k.Name, "kmod:versionerror", "build")
		require.Len(t, build, 1, k.Name)
		if k.Version.AtLeast(5, 14) {
			assert.Equal(t, outcome.Pass, build[0].Outcome, "%s: %s", k.Name, build[0].Evidence.Message)
			for _, stage := range []string{"load", "unload"} {
				c := cellsOf(rep, k.Name, "kmod:versionerror", stage)
				require.Len(t, c, 1, "%s %s", k.Name, stage)
				assert.Equal(t, outcome.Pass, c[0].Outcome, "%s %s: %s", k.Name, stage, c[0].Evidence.Message)
			}
		} else {
			assert.Equal(t, outcome.BuildError, build[0].Outcome, k.Name)
			assert.Regexp(t, `^versionerror\.c:\d+:\d+: `, build[0].Evidence.Message, k.Name)
			load := cellsOf(rep, k.Name, "kmod:versionerror", "load")
			require.Len(t, load, 1, k.Name)
			assert.Equal(t, outcome.BuildError, load[0].Outcome, "a module that did not build is never loaded")
		}
	}
}

// buildCheck builds a user's check command: a static binary that fails
// unless the file named by its argument exists (in the guest).
func buildCheck(t *testing.T) string {
	dir := t.TempDir()
	src := "package main\n\nimport \"os\"\n\nfunc main() {\n\tif _, err := os.Stat(os.Args[1]); err != nil {\n\t\tos.Exit(1)\n\t}\n}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module check\n"), 0o644))
	bin := filepath.Join(dir, "check")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// One broken kernel never hides the others: its failure is an infra-error
// cell and part of Run's aggregated error, and the good kernel's cells are
// all there.
func TestRunBrokenKernelHidesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel in QEMU; run without -short")
	}
	good := kernelstest.Default(t)[0]
	dir := t.TempDir()
	gdir, bdir := filepath.Join(dir, "good"), filepath.Join(dir, "broken")
	require.NoError(t, os.MkdirAll(gdir, 0o755))
	require.NoError(t, os.MkdirAll(bdir, 0o755))
	require.NoError(t, os.Symlink(good.Vmlinuz, filepath.Join(gdir, "vmlinuz")))
	require.NoError(t, os.Symlink(good.Config, filepath.Join(gdir, "config")))
	require.NoError(t, os.WriteFile(filepath.Join(bdir, "vmlinuz"), []byte("not a kernel"), 0o644))
	require.NoError(t, os.Symlink(good.Config, filepath.Join(bdir, "config")))
	catalog := filepath.Join(dir, "catalog.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte("kernels:\n  - name: good\n    local: "+gdir+"\n  - name: broken\n    local: "+bdir+"\n"), 0o644))

	rep, err := Run(context.Background(), Options{Catalog: catalog, Payloads: []string{PayloadBPF}, MeasureFloor: true})
	require.Error(t, err)
	var merr *multierror.Error
	require.True(t, errors.As(err, &merr), "Run aggregates per-kernel infra errors: %v", err)
	assert.Len(t, merr.Errors, 1)
	assert.Contains(t, err.Error(), "broken")

	require.NotNil(t, rep)
	broken := cellsOf(rep, "broken", PayloadKernel, "")
	require.Len(t, broken, 1)
	assert.Equal(t, outcome.InfraError, broken[0].Outcome)
	assert.Contains(t, broken[0].Evidence.Message, "not a kernel image")

	for _, k := range rep.Kernels {
		if k.Name == "good" {
			assert.Positive(t, k.FloorMS, "MeasureFloor: the good kernel's bare-boot floor")
		}
	}

	goodCells := cellsOf(rep, "good", PayloadBPF, "")
	require.Len(t, goodCells, len(builtinChecks[PayloadBPF]))
	for _, c := range goodCells {
		assert.Equal(t, outcome.Pass, c.Outcome, "%s: %s", c.Check, c.Evidence.Message)
	}
}

func TestRunBadOptions(t *testing.T) {
	ctx := context.Background()
	_, err := Run(ctx, Options{Payloads: []string{"ebpf"}})
	assert.ErrorContains(t, err, `payload "ebpf"`)
	_, err = Run(ctx, Options{BPFObjects: []string{"/nonexistent/probe.o"}})
	assert.ErrorContains(t, err, "--bpf /nonexistent/probe.o: not a readable file")
	_, err = Run(ctx, Options{KmodDirs: []string{t.TempDir()}})
	assert.ErrorContains(t, err, "no Kbuild or Makefile")
	_, err = Run(ctx, Options{Kernels: []string{"debian-potato"}})
	assert.ErrorContains(t, err, `kernel "debian-potato" is not in the catalog`)
}

// A module that splats or oopses on a real kernel: the kernel/boot cell
// carries the finding, the phase it came in and the kernel's own report;
// the module's load cell says what became of it. The oops must not cost
// the VM's whole timeout (on 7.2 the loader hangs after it).
func TestRunKernelFindings(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel in QEMU; run without -short")
	}
	ks := kernelstest.Default(t)
	newest := ks[len(ks)-1]
	var all []string
	for _, k := range ks {
		all = append(all, k.Name)
	}
	for _, tc := range []struct {
		fixture string
		kernels []string
		want    outcome.Outcome
		excerpt string
		load    outcome.Outcome
	}{
		// WARN's format differs across kernels (7.x changed it): every one.
		{"warnonload", all, outcome.Splat, "kmatrix fixture: a deliberate WARN at load", outcome.Pass},
		// The oops costs the 20 s grace on kernels whose loader hangs: one.
		{"oopsonload", []string{newest.Name}, outcome.Oops, "NULL pointer dereference", outcome.Oops},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			payload := "kmod:" + tc.fixture
			rep, err := Run(context.Background(), Options{Kernels: tc.kernels, KmodDirs: []string{"../kmod/testdata/" + tc.fixture},
				Timeout: 5 * time.Minute})
			require.NoError(t, err, "a finding is no infra error")
			for _, k := range tc.kernels {
				boot := cellsOf(rep, k, PayloadKernel, "boot")
				require.Len(t, boot, 1, k)
				assert.Equal(t, tc.want, boot[0].Outcome, "%s: %s\n%s", k, boot[0].Evidence.Message, boot[0].Evidence.Log)
				assert.Contains(t, boot[0].Evidence.Message, "during command "+payload, "%s: names the payload the kernel was running", k)
				assert.NotContains(t, boot[0].Evidence.Message, "timeout", "%s: stopped soon after the oops, not at the VM's deadline", k)
				assert.Contains(t, boot[0].Evidence.Log, tc.excerpt, k)

				load := cellsOf(rep, k, payload, "load")
				require.Len(t, load, 1, k)
				assert.Equal(t, tc.load, load[0].Outcome, "%s: %s", k, load[0].Evidence.Message)
				if tc.load == outcome.Oops {
					assert.Contains(t, load[0].Evidence.Log, tc.excerpt, "%s: the module's cell carries the kernel's report", k)
				}
			}
		})
	}
}

// A uprobe section naming /bin/bash (libbpf-tools' bashreadline) attaches in
// the guest because kmatrix ships the host's /bin/bash, with its
// libraries, to the same path; the user's check runs that bash, so the
// probe on its start-up runs, and the one on readline (interactive shells
// only) is attached and never ran: the object's truth, not kmatrix's gap.
func TestRunUprobeOnHostBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every catalog kernel in QEMU; run without -short")
	}
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("the host has no /bin/bash to ship into the guest")
	}
	ks := kernelstest.Default(t)
	rep, err := Run(context.Background(), Options{
		BPFObjects: []string{"../bpf/testdata/bash_uprobe_bpfel.o"},
		CheckCmd:   []string{"/bin/bash", "-c", "true"},
		OutDir:     t.TempDir(),
	})
	require.NoError(t, err)
	for _, k := range ks {
		for check, want := range map[string]outcome.Outcome{
			"bash_start/attach": outcome.Pass, "bash_start/run": outcome.Pass, "check": outcome.Pass,
			"bash_readline/attach": outcome.Pass, "bash_readline/run": outcome.NeverRan,
			"absent_binary/attach": outcome.NotAttached,
		} {
			c := cellsOf(rep, k.Name, "bpf:bash_uprobe_bpfel", check)
			require.Len(t, c, 1, "%s %s", k.Name, check)
			assert.Equal(t, want, c[0].Outcome, "%s %s: %s %s", k.Name, check, c[0].Evidence.Message, c[0].Evidence.Log)
		}
		absent := cellsOf(rep, k.Name, "bpf:bash_uprobe_bpfel", "absent_binary/attach")
		assert.Contains(t, absent[0].Evidence.Message, "the guest has no /opt/kmatrix-absent/bin/agent to probe", k.Name)
		assert.Contains(t, absent[0].Evidence.Message, "--file HOST:/opt/kmatrix-absent/bin/agent", k.Name)
	}
}
