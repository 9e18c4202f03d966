"""An exported ticket in the formats users load: loaded back as a model (`load`), and as a PEFT adapter
(`adapter`)."""
