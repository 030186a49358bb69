//go:build !unix

package eventstore

import "os"

// flockExclusive is a no-op where flock(2) does not exist: there the
// operator must make sure one process at a time runs on a data directory.
func flockExclusive(*os.File) error { return nil }
