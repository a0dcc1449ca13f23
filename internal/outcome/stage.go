package outcome

import "fmt"

// Stage is the step of a payload's life a check belongs to. A check
// declares its stage; the stage decides what a failure of that check is
// (Failure): a check in the load stage that fails is a load-error, one in
// the behave stage a fail. The string values are part of the report.json
// schema.
type Stage string

const (
	// StageFetch: getting the kernel (download, verify, unpack).
	StageFetch Stage = "fetch"
	// StageBuild: compiling what the payload needs for the kernel (a module).
	StageBuild Stage = "build"
	// StageLoad: loading it into the kernel (BPF programs and maps, a module),
	// and booting the kernel itself.
	StageLoad Stage = "load"
	// StageAttach: attaching loaded programs to their hooks.
	StageAttach Stage = "attach"
	// StageBehave: checking that the loaded payload does what it should.
	StageBehave Stage = "behave"
	// StageUnload: detaching programs, removing a module.
	StageUnload Stage = "unload"
)

// Stages lists every stage in the order a payload goes through them.
var Stages = []Stage{StageFetch, StageBuild, StageLoad, StageAttach, StageBehave, StageUnload}

// Rank is s's position in Stages; an unknown stage ranks as behave, where
// any check of a payload's own making belongs.
func (s Stage) Rank() int {
	for i, v := range Stages {
		if s == v {
			return i
		}
	}
	return 4
}

// Valid reports whether s is one of the defined stages.
func (s Stage) Valid() bool {
	for _, v := range Stages {
		if s == v {
			return true
		}
	}
	return false
}

// Failure is the outcome of a check of stage s that failed.
func (s Stage) Failure() Outcome {
	switch s {
	case StageBuild:
		return BuildError
	case StageLoad:
		return LoadError
	case StageAttach:
		return AttachError
	case StageFetch:
		return InfraError // getting the kernel is kmatrix's job, never the payload's
	}
	return Fail
}

// ParseStage turns a report string back into a Stage.
func ParseStage(s string) (Stage, error) {
	st := Stage(s)
	if !st.Valid() {
		return "", fmt.Errorf("unknown stage %q: want one of %v", s, Stages)
	}
	return st, nil
}
