"""Data shipped with the pure core: the event-grouping pair model (``event_model.json``)."""
