package vmtest

// ExecutableFiles lists the files that put the host executable host into
// the guest at guest: the file and, when it is a dynamic ELF, its
// interpreter and shared libraries, where the guest's loader looks. It is
// what Command.Host does for a command, for callers that need a binary in
// the guest without running it (a uprobe's target). The guest is amd64;
// ExecutableFilesFor names the guest's arch.
func ExecutableFiles(host, guest string) ([]File, error) {
	return executableFiles(host, guest, archAMD64)
}

// ExecutableFilesFor is ExecutableFiles for a guest of arch ("amd64",
// "arm64"): an arm64 guest takes only a static aarch64 executable.
func ExecutableFilesFor(arch, host, guest string) ([]File, error) {
	return executableFiles(host, guest, arch)
}
