// Package e2e holds tests of the library packages working together, with
// an arbiter running in the test process: the event stream under worker
// churn, and the latency from a worker's death to its reap event at a
// subscriber. They live apart because an in-process arbiter reaps every
// child of its process, which would steal the children of tests that run
// programs themselves.
package e2e
