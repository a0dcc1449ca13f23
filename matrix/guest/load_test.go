package guest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
)

const fixture = "testdata/programs.o"

// requireBPF skips unless this process can load BPF programs.
func requireBPF(t *testing.T) kernels.Version {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading and attaching BPF programs needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("this kernel has no BTF (/sys/kernel/btf/vmlinux); the fixture's CO-RE programs need it")
	}
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	v, err := kernels.ParseVersion(unix.ByteSliceToString(u.Release[:]))
	require.NoError(t, err)
	return v
}

// byKey indexes results by "program/stage".
func byKey(t *testing.T, rs []ProgramResult) map[string]ProgramResult {
	t.Helper()
	m := make(map[string]ProgramResult)
	for _, r := range rs {
		k := r.Program + "/" + string(r.Stage)
		require.NotContains(t, m, k, "two results for %s", k)
		m[k] = r
	}
	return m
}

// TestLoadObjectFixture loads the fixture object on the running kernel and
// checks every program's outcome: one program's failure must not hide the
// others, and nothing that did not attach is a pass.
func TestLoadObjectFixture(t *testing.T) {
	v := requireBPF(t)

	var streamed []ProgramResult
	rs, err := LoadObject(fixture, Options{OnResult: func(r ProgramResult) { streamed = append(streamed, r) }})
	require.NoError(t, err)
	assert.Equal(t, rs, streamed, "OnResult streams exactly the returned results, in order")
	m := byKey(t, rs)

	spec, err := ebpf.LoadCollectionSpec(fixture)
	require.NoError(t, err)
	for name, p := range spec.Programs {
		load, ok := m[name+"/load"]
		require.True(t, ok, "program %s has no load result", name)
		assert.Equal(t, p.SectionName, load.Section)
		assert.Equal(t, p.Type.String(), load.Type)
		assert.True(t, load.Outcome.Valid())
		_, attached := m[name+"/attach"]
		assert.Equal(t, load.Outcome == outcome.Pass, attached, "%s: an attach result exactly when it loaded", name)
	}
	for _, r := range rs {
		if r.Stage == StageAttach && r.Outcome == outcome.Pass {
			assert.True(t, strings.HasPrefix(r.Message, "attached: "), "%s: %s", r.Program, r.Message)
		}
		if r.Outcome != outcome.Pass {
			assert.NotEmpty(t, r.Facts.Class, "%s/%s failed without a class: %s", r.Program, r.Stage, r.Message)
			assert.NotEmpty(t, r.Message)
		}
		assert.GreaterOrEqual(t, r.DurationMS, 0.0)
	}

	t.Run("pass", func(t *testing.T) {
		load := m["socket_pass/load"]
		assert.Equal(t, outcome.Pass, load.Outcome, load.Message)
		require.NotNil(t, load.Facts.VerifiedInsns)
		if v.Has(version.VerifiedInsns) {
			assert.True(t, load.Facts.VerifiedInsns.Known, "Linux %s reports verified_insns", v)
			assert.Greater(t, load.Facts.VerifiedInsns.N, uint32(0))
		} else {
			assert.False(t, load.Facts.VerifiedInsns.Known)
			assert.Contains(t, load.Message, "5.16")
		}
		attach := m["socket_pass/attach"]
		assert.Equal(t, outcome.Pass, attach.Outcome, attach.Message)
		assert.Equal(t, "socket filter on a UDP socket", attach.Facts.AttachPoint)
	})

	t.Run("verifier rejection", func(t *testing.T) {
		r := m["verifier_reject/load"]
		assert.Equal(t, outcome.LoadError, r.Outcome)
		assert.Equal(t, ClassVerifier, r.Facts.Class)
		assert.Equal(t, "EACCES", r.Facts.Errno)
		assert.Equal(t, int(syscall.EACCES), r.Facts.ErrnoValue)
		assert.Contains(t, r.Message, "invalid mem access")
		assert.Contains(t, r.Log, "map_value_or_null", "the log holds the verifier's reason")
		assert.LessOrEqual(t, len(strings.Split(r.Log, "\n")), 50, "only the log's tail is kept")
	})

	t.Run("helper not available to the program type", func(t *testing.T) {
		r := m["helper_wrong_type/load"]
		assert.Equal(t, outcome.LoadError, r.Outcome)
		assert.Equal(t, ClassNotSupported, r.Facts.Class)
		assert.True(t, strings.HasPrefix(r.Message, "helper bpf_probe_write_user is not available to SocketFilter programs in this kernel: "), r.Message)
		assert.Equal(t, "EINVAL", r.Facts.Errno)
	})

	t.Run("helper the kernel may lack", func(t *testing.T) {
		if v.Has(version.BPFLoop) {
			assert.Equal(t, outcome.Pass, m["uses_bpf_loop/attach"].Outcome, m["uses_bpf_loop/load"].Message)
			return
		}
		r := m["uses_bpf_loop/load"]
		assert.Equal(t, ClassNotSupported, r.Facts.Class)
		assert.True(t, strings.HasPrefix(r.Message, "helper bpf_loop does not exist in this kernel: "), r.Message)
	})

	t.Run("CO-RE relocation failure names the field", func(t *testing.T) {
		r := m["core_missing_field/load"]
		assert.Equal(t, outcome.LoadError, r.Outcome)
		assert.Equal(t, ClassCORE, r.Facts.Class)
		assert.Equal(t, "byte_off of task_struct.kmatrix_no_such_field", r.Facts.CORERelocation)
		assert.Contains(t, r.Message, "task_struct.kmatrix_no_such_field")
		assert.NotEmpty(t, r.Log)
	})

	t.Run("broken map fails only its program", func(t *testing.T) {
		r := m["uses_broken_map/load"]
		assert.Equal(t, outcome.LoadError, r.Outcome)
		assert.Equal(t, ClassMap, r.Facts.Class)
		assert.Equal(t, "EINVAL", r.Facts.Errno)
		assert.True(t, strings.HasPrefix(r.Message, "map broken_map: "), r.Message)
		// The verifier's own map is only created for its program, too.
		assert.Equal(t, outcome.Pass, m["xdp_pass/load"].Outcome)
	})

	t.Run("unknown section", func(t *testing.T) {
		r := m["unknown_section/load"]
		assert.Equal(t, outcome.NotAttached, r.Outcome)
		assert.Equal(t, ClassUnknownSection, r.Facts.Class)
		assert.Contains(t, r.Message, `"kmatrix/unknown"`)
		assert.Contains(t, r.Message, "neither loaded nor attached")
	})

	t.Run("no attach point", func(t *testing.T) {
		r := m["tc_classifier/attach"]
		if v.Has(version.TCX) {
			assert.Equal(t, outcome.Pass, r.Outcome, r.Message)
			assert.Equal(t, "tcx", r.Facts.Variant)
		} else {
			// kmatrix's own limit (no clsact/cls_bpf modules in the guest).
			assert.Equal(t, outcome.InfraError, r.Outcome, r.Message)
			assert.Equal(t, ClassKmatrix, r.Facts.Class)
		}
		assert.Equal(t, outcome.Pass, m["perf_event_prog/attach"].Outcome, m["perf_event_prog/attach"].Message)
	})

	t.Run("run counts", func(t *testing.T) {
		// Hooks the trigger workload reaches on every kernel.
		for _, name := range []string{"socket_pass", "kprobe_pass", "kretprobe_pass", "ksyscall_pass", "tracepoint_pass",
			"raw_tracepoint_pass", "tp_btf_pass", "fentry_pass", "fexit_pass", "xdp_pass", "cgroup_skb_egress", "cgroup_sock_create", "perf_event_prog"} {
			if m[name+"/attach"].Outcome != outcome.Pass {
				continue // this host's limits (no tracefs here, say); the guest tests insist
			}
			r := m[name+"/run"]
			assert.Equal(t, outcome.Pass, r.Outcome, "%s: %s", name, r.Message)
			if assert.NotNil(t, r.Facts.RunCount, name) {
				assert.Greater(t, *r.Facts.RunCount, uint64(0), name)
			}
		}
		for _, r := range rs {
			if r.Stage == StageRun {
				_, attached := m[r.Program+"/attach"]
				assert.True(t, attached, "%s: a run result only for what attached", r.Program)
			}
		}
	})

	t.Run("verifier statistics", func(t *testing.T) {
		r := m["socket_pass/load"]
		require.NotNil(t, r.Facts.Verifier)
		assert.Greater(t, r.Facts.Verifier.InsnsProcessed, uint32(0))
		assert.Equal(t, uint32(1_000_000), r.Facts.Verifier.InsnLimit)
		assert.Greater(t, r.Facts.Verifier.JitedBytes, uint32(0))
	})

	t.Run("kprobe on a missing function", func(t *testing.T) {
		r := m["kprobe_missing/attach"]
		assert.Equal(t, outcome.AttachError, r.Outcome)
		assert.Equal(t, ClassAttachTarget, r.Facts.Class, r.Message)
		assert.Equal(t, "kprobe kmatrix_no_such_function", r.Facts.AttachPoint)
		assert.True(t, strings.HasPrefix(r.Message, "kprobe kmatrix_no_such_function: "), r.Message)
	})

	t.Run("tcx", func(t *testing.T) {
		r := m["tcx_ingress/attach"]
		assert.Equal(t, "tcx ingress on lo of its own network namespace", r.Facts.AttachPoint)
		if v.Has(version.TCX) {
			assert.Equal(t, outcome.Pass, r.Outcome, r.Message)
		} else {
			assert.Equal(t, outcome.AttachError, r.Outcome)
			assert.Equal(t, ClassNotSupported, r.Facts.Class)
			assert.Equal(t, "6.6", r.Facts.RequiresKernel)
			assert.True(t, strings.HasPrefix(r.Message, "tcx ingress on lo of its own network namespace: requires Linux 6.6: "), r.Message)
		}
	})

	t.Run("xdp and cgroup", func(t *testing.T) {
		for _, name := range []string{"xdp_pass", "cgroup_skb_egress", "cgroup_sock_create", "raw_tracepoint_pass"} {
			r := m[name+"/attach"]
			assert.Equal(t, outcome.Pass, r.Outcome, "%s: %s", name, r.Message)
		}
	})

	t.Run("detached afterwards", func(t *testing.T) {
		// Every link was closed: attaching again to the same hooks works
		// (xdp allows one program per interface, tcx reports an in-use
		// anchor otherwise), and no detach failure was reported.
		for _, r := range rs {
			assert.NotEqual(t, StageDetach, r.Stage, "%s: %s", r.Program, r.Message)
		}
		again, err := LoadObject(fixture, Options{Programs: []string{"xdp_pass"}})
		require.NoError(t, err)
		require.Len(t, again, 3) // load, attach, run
		assert.Equal(t, outcome.Pass, again[1].Outcome, again[1].Message)
	})
}

// TestLoadObjectCheckCommand runs the check command while the programs are
// attached and reports it as one more result.
func TestLoadObjectCheckCommand(t *testing.T) {
	requireBPF(t)
	bin, err := os.Executable()
	require.NoError(t, err)
	// The test binary itself is the check: -test.run=^$ runs no test and exits 0.
	rs, err := LoadObject(fixture, Options{Programs: []string{"socket_pass"}, Check: []string{bin, "-test.run=^$"}})
	require.NoError(t, err)
	require.Len(t, rs, 4) // load, attach, check, run
	c := rs[2]
	assert.Equal(t, StageCheck, c.Stage)
	assert.Equal(t, outcome.Pass, c.Outcome, c.Message+"\n"+c.Log)
	require.NotNil(t, c.Facts.ExitCode)
	assert.Equal(t, 0, *c.Facts.ExitCode)
}

func TestLoadObjectBadInput(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notELF, []byte("not an object\n"), 0o644))
	self, err := os.Executable()
	require.NoError(t, err)
	// The fixture with its ELF header's data encoding flipped to
	// big-endian, as clang -target bpfeb writes it.
	obj, err := os.ReadFile(fixture)
	require.NoError(t, err)
	obj[5] = 2 // EI_DATA = ELFDATA2MSB
	bigEndian := filepath.Join(dir, "probe_bpfeb.o")
	require.NoError(t, os.WriteFile(bigEndian, obj, 0o644))

	for _, tc := range []struct {
		name, path string
		opts       Options
		want       []string
		is         error
	}{
		{"missing file", filepath.Join(dir, "nope.o"), Options{}, []string{"nope.o", "does not exist", "pass the path of a BPF ELF object"}, fs.ErrNotExist},
		{"not an ELF", notELF, Options{}, []string{"notes.txt", "not an ELF file", "clang -target bpf"}, nil},
		{"big-endian", bigEndian, Options{}, []string{"big-endian", "use the bpfel build"}, ErrBigEndian},
		{"not BPF", self, Options{}, []string{"not a usable BPF ELF object", "EM_X86_64"}, nil},
		{"no programs", "testdata/noprograms.o", Options{}, []string{"noprograms.o", "no BPF programs in it"}, ErrNoPrograms},
		{"unknown program", fixture, Options{Programs: []string{"socket_pass", "nope"}}, []string{`no program named ["nope"]`, `"socket_pass"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := LoadObject(tc.path, tc.opts)
			require.Error(t, err)
			assert.Nil(t, rs)
			var oe *ObjectError
			require.True(t, errors.As(err, &oe), "%T is an *ObjectError", err)
			assert.Equal(t, tc.path, oe.Path)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
}

// BenchmarkLoadObject measures a whole kmatrix-guest run on the host kernel:
// parse the fixture, load each of its programs on its own, attach, detach.
func BenchmarkLoadObject(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("loading BPF programs needs root")
	}
	for b.Loop() {
		if _, err := LoadObject(fixture, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
