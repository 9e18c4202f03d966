"""A run from its options to its report: hub mode (`hub`), preparing the data, space and run folder (`prepare`),
placing trials on the cluster (`plan`, `trials`), the Ray Tune tuner (`tuner`) and the sequence it runs in
(`launch`), the console's live line and the run's log (`console`), the driver's Ray processes (`processes`),
`resume`, `confirm`, and the end of a run (`finish`)."""
