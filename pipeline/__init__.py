"""The pipeline: poll due sources → store → classify → plan alerts (``pipeline.ingest``), and
the digest tick. It reaches the database through ``models.db`` and the sources through
``scrapers``; what it decides is computed by the pure core (``models``)."""
