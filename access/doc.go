// Package access decides who may drive the arbiter. The control endpoint
// and the console run commands as the arbiter's user, usually root, so a
// command is taken only from a peer the kernel vouches for:
//
//   - on an ipc:// endpoint, the connecting process's uid, gid and pid from
//     SO_PEERCRED;
//   - on a loopback tcp:// endpoint, the uid owning the connecting socket,
//     from one exact sock_diag lookup by the connection's 4-tuple (as
//     `ss -tne` shows it); a tcp peer that is no socket of this host is
//     Remote, and may do nothing unless insecure_remote_control is set;
//   - on the console, the same for its HTTP connection, or the httpd_auth
//     user.
//
// The identity is taken once per connection, when it is accepted and
// before the ZMTP handshake, so that a client cannot have sent a command
// and closed its socket (whose uid the kernel then no longer reports)
// before it is identified.
//
// [Policy] then grants one of three [Level]s: root and the arbiter's own
// user may do everything, as may [circus] control_users and members of
// control_groups (and endpoint_owner, Circus's key for the user meant to
// drive an ipc endpoint); read_users and read_groups may run the commands
// that change nothing ([ReadOnly]: status, stats, options, tail, logs...);
// everyone else nothing, since options, tail and logs show the workers'
// environment and output, which hold secrets more often than not. "*" in
// a list means every local user.
package access
