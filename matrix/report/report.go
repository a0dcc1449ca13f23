// Package report is kmatrix's compatibility report: the versioned JSON
// document that is the source of truth of a run (report.json), and the views
// rendered from it for people and machines: Markdown for a GitHub step summary
// or PR comment (report.md), one self-contained HTML page (report.html),
// JUnit XML for CI test tabs (junit.xml) and a compact terminal table.
//
// It also joins the reports of sharded runs (Merge) and compares a run with a
// baseline (Diff), so CI can fail on a regression and say what changed.
// SCHEMA.md documents report.json for people who do not read Go.
//
// The package is pure data and rendering: it never boots a kernel, and it
// imports nothing of kmatrix but the outcome taxonomy, so any tool can read
// and write reports.
package report

import (
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// Schema is the version of the report.json format this package writes and
// reads. Adding an optional field keeps the version; renaming or removing a
// field, or changing a field's meaning, makes a new one.
//
// v2 (this one) names checks by one rule: a Go test's check is the test's
// name ("TestLoad"), a stage kmatrix performs itself is the stage's name
// ("build"). v1 named the built-in payloads' checks without "Test" and the
// module build "Build"; Read upgrades v1 reports (SchemaV1), so `report
// diff` and `report merge` compare across the two.
const Schema = "kmatrix.report/v2"

// SchemaV1 is the previous version, which Read still reads.
const SchemaV1 = "kmatrix.report/v1"

// Report is one run of the matrix (or one shard of it, or a merge of shards).
type Report struct {
	// Schema is always the Schema constant; Read refuses any other value.
	Schema string `json:"schema"`
	// GeneratedAt is when the run finished (UTC).
	GeneratedAt time.Time `json:"generated_at"`
	// Host describes the machine and tools that ran the matrix.
	Host Host `json:"host"`
	// Shard is "i/n" for the report of shard i of n; empty for a whole run
	// or a complete merge.
	Shard string `json:"shard,omitempty"`
	// MissingShards lists the shards ("3/4") a merge did not get, so an
	// incomplete matrix never passes for a complete one.
	MissingShards []string `json:"missing_shards,omitempty"`
	// Kernels are the kernels of the run, ordered by version (Finalize).
	Kernels []Kernel `json:"kernels"`
	// Cells are the results, ordered by kernel, payload and check (Finalize).
	Cells []Cell `json:"cells"`
	// Summary counts cells by outcome, every outcome present (zero
	// included). Finalize recomputes it; a value read from a file is never
	// trusted.
	Summary map[outcome.Outcome]int `json:"summary"`
}

// Host describes where the matrix ran: timings only compare between runs
// on like hosts (TCG is an order of magnitude slower than KVM).
type Host struct {
	// Accel is the QEMU accelerator the guests ran under: "kvm" or "tcg".
	Accel string `json:"accel,omitempty"`
	// QEMU is the QEMU version, e.g. "7.2.15".
	QEMU string `json:"qemu,omitempty"`
	// Go is the Go toolchain version, e.g. "go1.26.8".
	Go string `json:"go,omitempty"`
	// CPUs is the number of host CPUs available to the run.
	CPUs int `json:"cpus,omitempty"`
	// Kmatrix is the version of kmatrix that made the report: module
	// version and VCS revision, e.g. "v0.3.0 (abc123def456)" or
	// "(devel) abc123def456-dirty" (see matrix.BuildInfo).
	Kmatrix string `json:"kmatrix,omitempty"`
}

// Kernel is one row of the matrix: the identity of the kernel the cells ran
// on. Version, PackageVersion, SHA256 and Compiler are what a diff compares
// to explain "what changed" between two runs.
type Kernel struct {
	// Name is the catalog name, e.g. "debian-bookworm"; cells refer to it.
	Name string `json:"name"`
	// Arch is the kernel's architecture, "amd64" or "arm64" (optional:
	// reports from before arches leave it out, and mean amd64).
	Arch string `json:"arch,omitempty"`
	// Release is `uname -r`, e.g. "6.1.0-56-cloud-amd64".
	Release string `json:"release"`
	// Version is the upstream version, e.g. "6.1.192".
	Version string `json:"version"`
	// Suite is the archive suite, e.g. "bookworm-security"; empty for local kernels.
	Suite string `json:"suite,omitempty"`
	// Package and PackageVersion name the image package.
	Package        string `json:"package,omitempty"`
	PackageVersion string `json:"package_version,omitempty"`
	// SHA256 is the digest of the package holding the vmlinuz (of the
	// vmlinuz for local kernels).
	SHA256 string `json:"sha256,omitempty"`
	// Compiler is the compiler the kernel was built with, e.g. "gcc-12".
	Compiler string `json:"compiler,omitempty"`
	// BTF reports whether the kernel carries BTF.
	BTF bool `json:"btf"`
	// Accel is the accelerator this kernel's guest ran under, when known.
	Accel string `json:"accel,omitempty"`
	// BootMS is the wall time of this kernel's guest from QEMU start to
	// poweroff; FloorMS is the bare-boot floor of the same kernel (a
	// trivial init), the baseline cell times are judged against.
	BootMS  int64 `json:"boot_ms,omitempty"`
	FloorMS int64 `json:"floor_ms,omitempty"`
	// NewerAvailable, when set, says that the archive holds a newer kernel
	// of the same series than the one tested: "6.1.192-3
	// (linux-image-6.1.0-57-cloud-amd64 in bookworm-security)".
	NewerAvailable string `json:"newer_available,omitempty"`
}

// GetArch is the kernel's arch, amd64 when the report does not say.
func (k Kernel) GetArch() string {
	if k.Arch == "" {
		return "amd64"
	}
	return k.Arch
}

// ArchTag is the arch to show beside a kernel's name in the grids: empty
// for amd64, the arch every report had before arches, so that those read
// as they did; "arm64" for an arm64 kernel.
func (k Kernel) ArchTag() string {
	if k.GetArch() == "amd64" {
		return ""
	}
	return k.Arch
}

// Cell is one kernel × payload × check result.
type Cell struct {
	// Kernel is the Name of a Kernel of the same report.
	Kernel string `json:"kernel"`
	// Payload is "bpf", "kmod", or the name of a user payload.
	Payload string `json:"payload"`
	// Check is the check's name, e.g. "build", "load", "TestExecEvents".
	Check string `json:"check"`
	// Outcome is the cell's one result class.
	Outcome outcome.Outcome `json:"outcome"`
	// Stage is the stage of the payload's life the check belongs to:
	// fetch, build, load, attach, behave or unload (the stage that failed,
	// for a failure). The report orders a kernel's checks by it.
	Stage outcome.Stage `json:"stage"`
	// DurationMS is the wall time the check took.
	DurationMS int64 `json:"duration_ms"`
	// Evidence says why the cell has its outcome.
	Evidence Evidence `json:"evidence"`
	// Expected is set when a declared expectation covers the cell (see
	// Expected); nil otherwise. Optional: added within v1, kept in v2.
	Expected *Expected `json:"expected,omitempty"`
}

// Evidence is what a person needs to understand a cell without rerunning it.
type Evidence struct {
	// Message is one line: the assertion, the first compiler error with
	// file:line, the errno and attach point, the verifier's verdict.
	Message string `json:"message,omitempty"`
	// Log is the long form: the verifier log tail, the compiler output, a
	// console excerpt with the oops trace.
	Log string `json:"log,omitempty"`
	// Facts are small named values: verified_insns, variant, compiler,
	// errno, attach_point, ...
	Facts map[string]string `json:"facts,omitempty"`
}
