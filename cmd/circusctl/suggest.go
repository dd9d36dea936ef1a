package main

import (
	"fmt"
	"strconv"

	"github.com/ringmaster-dev/ringmaster/internal/suggest"
)

// What circusctl finds wrong itself names the nearest known name, as the
// arbiter does for watchers and keys (internal/suggest).

// unknownCommand says that name is no command, and which it may have
// meant.
func unknownCommand(name string) string {
	if hint := suggest.Hint(name, commandNames(), strconv.Quote); hint != "" {
		return fmt.Sprintf("unknown command %q%s", name, hint)
	}
	return fmt.Sprintf("unknown command %q (circusctl help lists them)", name)
}

// flagNames are c's flags as written, --name.
func (c *command) flagNames() []string {
	names := make([]string, len(c.flags))
	for i, f := range c.flags {
		names[i] = "--" + f.name
	}
	return names
}
