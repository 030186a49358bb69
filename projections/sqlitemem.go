package projections

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static void release_freed(void) { malloc_trim(0); }
#else
static void release_freed(void) {}
#endif

// Declared here rather than through a header: go-sqlite3 links SQLite into
// the binary but exports no Go API for its memory statistics and limits.
extern long long sqlite3_memory_used(void);
extern long long sqlite3_memory_highwater(int resetFlag);
extern long long sqlite3_soft_heap_limit64(long long n);
*/
import "C"

// SQLiteMemory returns the bytes SQLite's allocator holds now, across every
// connection of the process, and the most it held since the last call with
// reset. That memory is outside the Go heap and its limit.
func SQLiteMemory(reset bool) (used, highwater int64) {
	r := C.int(0)
	if reset {
		r = 1
	}
	return int64(C.sqlite3_memory_used()), int64(C.sqlite3_memory_highwater(r))
}

// LimitSQLiteMemory sets SQLite's soft heap limit for the whole process:
// near it, SQLite shrinks its page caches and a sort (CREATE INDEX at the
// end of a rebuild) writes its runs to temporary files sooner. Nothing
// fails at the limit. 0 removes it; a negative n changes nothing. It
// returns the previous limit.
func LimitSQLiteMemory(n int64) (prev int64) {
	return int64(C.sqlite3_soft_heap_limit64(C.longlong(n)))
}

// releaseFreedCMemory hands the memory the C allocator holds free back to
// the system (glibc's malloc_trim; nothing elsewhere). A rebuild frees
// hundreds of MB of SQLite's caches and sort buffers that glibc would
// otherwise keep in its arenas, counted in the process's resident memory.
func releaseFreedCMemory() { C.release_freed() }
