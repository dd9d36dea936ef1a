// Package web is the arbiter's live console: one page, served with its
// assets from the binary, that shows every watcher and worker and the
// event timeline as they change, and acts on them.
package web
