package control

import "fmt"

// Errno is Circus's error number, the "errno" field of an error reply.
type Errno int

// Circus's errnos (circus/exc.py), with its names.
const (
	NotSpecified    Errno = 0 // NOT_SPECIFIED: the default
	InvalidJSON     Errno = 1 // INVALID_JSON: the body is not JSON ("json invalid")
	UnknownCommand  Errno = 2 // UNKNOWN_COMMAND: "unknown command: 'x'"
	MessageError    Errno = 3 // MESSAGE_ERROR: a malformed message, a missing or mistyped property, an unknown watcher
	OSError         Errno = 4 // OS_ERROR: an operating-system call failed
	CommandError    Errno = 5 // COMMAND_ERROR: the command failed
	BadMsgDataError Errno = 6 // BAD_MSG_DATA_ERROR: an awaited ("waiting") operation failed
)

var errnoNames = [...]string{"NOT_SPECIFIED", "INVALID_JSON", "UNKNOWN_COMMAND", "MESSAGE_ERROR",
	"OS_ERROR", "COMMAND_ERROR", "BAD_MSG_DATA_ERROR"}

// String returns Circus's name for e, such as "MESSAGE_ERROR".
func (e Errno) String() string {
	if e >= 0 && int(e) < len(errnoNames) {
		return errnoNames[e]
	}
	return fmt.Sprintf("Errno(%d)", int(e))
}

// Error is a failed request as the server reports it: an errno and the
// reason text of the error reply. Handlers return one inside [Fail].
type Error struct {
	Errno  Errno
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (errno %d)", e.Reason, int(e.Errno)) }

// Errorf returns an *Error with errno and a formatted reason.
func Errorf(errno Errno, format string, args ...any) *Error {
	return &Error{Errno: errno, Reason: fmt.Sprintf(format, args...)}
}

// errMissing and errType word property errors as Circus does
// ("message invalid 'name' is missing").
func errMissing(key string) *Error {
	return Errorf(MessageError, "message invalid %s is missing", pyQuote(key))
}

func errType(key, want string) *Error {
	return Errorf(MessageError, "message invalid %s must be %s", pyQuote(key), want)
}

// pyQuote renders s as Python's repr does for the common case: in single
// quotes, or double quotes when s holds a single quote and no double one.
func pyQuote(s string) string {
	q := byte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			q = '"'
		}
		if s[i] == '"' {
			q = '\''
			break
		}
	}
	b := []byte{q}
	for _, r := range s {
		switch {
		case r == '\\':
			b = append(b, `\\`...)
		case r == rune(q):
			b = append(b, '\\', q)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r < 0x20 || r == 0x7f:
			b = fmt.Appendf(b, `\x%02x`, r)
		default:
			b = fmt.Appendf(b, "%c", r)
		}
	}
	return string(append(b, q))
}
