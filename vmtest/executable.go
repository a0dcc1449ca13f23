package vmtest

// ExecutableFiles lists the files that put the host executable host into
// the guest at guest: the file and, when it is a dynamic ELF, its
// interpreter and shared libraries, where the guest's loader looks. It is
// what Command.Host does for a command, for callers that need a binary in
// the guest without running it (a uprobe's target).
func ExecutableFiles(host, guest string) ([]File, error) {
	return executableFiles(host, guest)
}
