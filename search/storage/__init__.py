"""Where a run lives: the run folder's file names (`files`) and its location, local or in remote storage
(`location`), and what the run is, read back from its run.json (`run_info`)."""
