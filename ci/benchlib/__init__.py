"""The pieces of ci/bench: each module measures one pair of the benchmark
(labctl against the hand-made way, the tools against the kernel) and the
common module holds what they share (processes, namespaces, cleanup, the
table of figures)."""
