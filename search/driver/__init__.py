"""A run from its options to its report: hub mode (`hub`), preparing the data, space and run folder (`prepare`),
placing trials on the cluster (`plan`, `trials`), the Ray Tune tuner (`tuner`), progress and console (`progress`,
`console`), the driver's Ray processes (`processes`), `resume`, and the end of a run (`finish`)."""
