"""Data shipped with the program: the labelled headlines the learned models are trained and
validated on, and the default models built from them (see ``pipeline.learning``)."""
