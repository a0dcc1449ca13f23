package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/matrix/report"
)

// TestBisectStrcasecmp bisects a real behaviour change over trixie-backports'
// 29 signed kernels (6.16.3 to 7.3.4): testdata/strcasecmp.o calls the
// bpf_strcasecmp kfunc, which Linux 6.18 added, so its load cell passes on
// 7.3.4 and fails on 6.16.3, and the first version where it passes is the
// first 6.18 the archive lists. It boots about five kernels (one download
// each when cold), so it runs only in the series lane (make series, or
// KMATRIX_SERIES=1).
func TestBisectStrcasecmp(t *testing.T) {
	if os.Getenv("KMATRIX_SERIES") == "" {
		t.Skip("boots ~5 trixie-backports kernels: set KMATRIX_SERIES=1 (make series) to run it")
	}
	bisectStrcasecmp(t, "amd64")
}

func TestBisectBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--check", "load", "--good", "a", "--bad", "b"}, "want PAYLOAD/CHECK"},
		{[]string{"--check", "bpf/TestLoad", "--good", "a"}, "--good and --bad are both needed"},
		{[]string{"--check", "bpf/TestLoad", "--good", "nope", "--bad", "debian-sid"},
			`--good "nope" is not a kernel of the catalog (debian-bullseye, debian-bookworm, debian-trixie, debian-sid, debian-bookworm-arm64, debian-sid-arm64)`},
		{[]string{"--check", "bpf/TestLoad", "--good", "debian-sid", "--bad", "debian-trixie"}, "bisect within one suite"},
		// --arch: the value, and the arch of the kernels named.
		{[]string{"--arch", "sparc", "--check", "bpf/TestLoad", "--good", "debian-sid", "--bad", "debian-trixie"},
			"kmatrix bisect: --arch sparc: kmatrix boots amd64 and arm64 kernels: want one of them"},
		{[]string{"--arch", "arm64", "--check", "bpf/TestLoad", "--good", "debian-sid", "--bad", "debian-sid-arm64"},
			"--arch arm64, but --good debian-sid is an amd64 kernel of catalog default: give an arm64 kernel (debian-bookworm-arm64, debian-sid-arm64), or leave --arch out"},
		{[]string{"--arch", "arm64", "--catalog", "series", "--check", "bpf/TestLoad", "--good", "linux-6.18", "--bad", "linux-6.17"},
			"--arch arm64, but --good linux-6.18 is an amd64 kernel of catalog series: give an arm64 kernel (linux-5.10-arm64, linux-6.1-arm64,"},
		{[]string{"--arch", "amd64", "--catalog", "arm64", "--check", "bpf/TestLoad", "--good", "debian-sid-arm64", "--bad", "debian-bookworm-arm64"},
			"--arch amd64: catalog arm64 has no amd64 kernels (it has debian-bookworm-arm64 (arm64), debian-sid-arm64 (arm64))"},
		{[]string{"--check", "bpf/TestLoad", "--good", "debian-sid-arm64", "--bad", "debian-sid"},
			"--good debian-sid-arm64 is an arm64 kernel, --bad debian-sid an amd64 one: bisect kernels of one arch"},
		{[]string{"--check", "bpf/TestLoad", "--good", "debian-sid-arm64", "--bad", "7.2.6-1~bpo13+1", "--suite", "trixie-backports"},
			"--good is sid cloud-arm64 from linux-signed-arm64, --bad trixie-backports cloud-arm64 from linux-signed-arm64: bisect within one suite"},
		{[]string{"--arch", "arm64", "--check", "bpf/TestLoad", "--good", "debian-bookworm-arm64", "--bad", "debian-sid-arm64"},
			"--good is bookworm cloud-arm64 from linux-signed-arm64, --bad sid cloud-arm64 from linux-signed-arm64: bisect within one suite"},
	} {
		var stdout, stderr bytes.Buffer
		code := bisectMain(context.Background(), append(tc.args, "--out", t.TempDir()), &stdout, &stderr)
		assert.Equal(t, 2, code, "%v: %s", tc.args, stderr.String())
		assert.Contains(t, stderr.String(), tc.want, tc.args)
	}
}

// TestBisectStrcasecmpArm64 is TestBisectStrcasecmp on trixie-backports'
// 29 signed cloud-arm64 kernels (--arch arm64; the same object, as bpfel
// objects are arch-neutral), booted with qemu-system-aarch64: the change
// is at the same place, the first 6.18. It boots about five arm64 kernels
// under TCG (one download each when cold), so it runs only in the arm64
// series lane (make series-arm64: KMATRIX_SERIES=1 and KMATRIX_ARM64=1).
func TestBisectStrcasecmpArm64(t *testing.T) {
	if os.Getenv("KMATRIX_SERIES") == "" || os.Getenv("KMATRIX_ARM64") == "" {
		t.Skip("boots ~5 trixie-backports arm64 kernels under TCG: set KMATRIX_SERIES=1 and KMATRIX_ARM64=1 (make series-arm64) to run it")
	}
	bisectStrcasecmp(t, "arm64")
}

// bisectStrcasecmp bisects the bpf_strcasecmp change over trixie-backports'
// kernels of arch, checking every step booted a kernel of that arch.
func bisectStrcasecmp(t *testing.T, arch string) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := bisectMain(context.Background(), []string{
		"--arch", arch, "--check", "bpf:strcasecmp/case_insensitive/load", "--bpf", "testdata/strcasecmp.o",
		"--suite", "trixie-backports", "--good", "7.3.4-1~bpo13+1", "--bad", "6.16.3-1~bpo13+1", "--out", out,
	}, &stdout, &stderr)
	t.Log(stderr.String())
	require.Equal(t, 0, code, "%s", stdout.String())
	t.Log(stdout.String())
	b, err := os.ReadFile(filepath.Join(out, "bisect.json"))
	require.NoError(t, err)
	var res bisectResult
	require.NoError(t, json.Unmarshal(b, &res))
	assert.Equal(t, arch, res.Arch)
	assert.Equal(t, 29, res.Versions)
	assert.Regexp(t, `^6\.17\.`, res.Bad.Version, "the newest kernel without bpf_strcasecmp is a 6.17")
	assert.Equal(t, "load-error", string(res.Bad.Outcome))
	assert.Contains(t, res.Bad.Message, `kfunc "bpf_strcasecmp"`)
	assert.Regexp(t, `^6\.18\.`, res.Good.Version, "the first kernel with it is a 6.18")
	assert.Equal(t, "pass", string(res.Good.Outcome))
	assert.LessOrEqual(t, res.Boots, 5, "29 versions take at most ceil(log2(28)) = 5 boots")
	for _, s := range res.Steps {
		rep, err := report.Read(filepath.Join(out, "v"+unsafeName.ReplaceAllString(s.Version, "_"), "report.json"))
		require.NoError(t, err)
		require.Len(t, rep.Kernels, 1)
		assert.Equal(t, arch, rep.Kernels[0].Arch, "%s booted as an %s kernel", s.Version, arch)
	}
	t.Logf("kmatrix-evidence bisect-%s boots=%d versions=%d change=%s..%s", arch, res.Boots, res.Versions, res.Bad.Version, res.Good.Version)
}
