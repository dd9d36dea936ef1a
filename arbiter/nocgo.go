//go:build !cgo

// The arbiter forks its workers from C (spawn.c, guardian.c): it cannot be
// built without cgo, which the go command turns off when it finds no C
// compiler. Rather than a page of undefined names (spawnAttr, guardian...),
// such a build stops at this import, whose path is the one line to read.

package arbiter

import _ "ringmaster_needs_cgo/install_a_C_compiler_gcc_and_build_with_CGO_ENABLED_1"
