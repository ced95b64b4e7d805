"""Analysis verbs on the experiment engine: each evaluates points × replications on common
random numbers through `gtmsim.experiment` and writes a results folder."""
