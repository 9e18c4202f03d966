"""What a run found: its trials as a table and its frontier (`table`), test-row scoring (`holdout`) and the
uncertainty of what it reports (`uncertainty`, `confirm`), and its figures (`figures`, `plots`)."""
