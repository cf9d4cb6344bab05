package main

import "golang.org/x/sys/unix"

// hardenProcess keeps secrets out of core dumps: it sets the core size limit
// to zero and marks the process not dumpable (which also stops other
// processes of the same user from attaching a debugger). It is best effort:
// a failure is not fatal, since the ceremony may run where prctl is denied.
//
// TODO: lock secret pages in memory (mlock) where RLIMIT_MEMLOCK allows; the
// Go runtime may copy a slice before we can lock it, so this needs care.
func hardenProcess() {
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
