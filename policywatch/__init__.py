"""The application shell: settings, logging, the composition root, the running service (ticks,
leaders, health and metrics), seeding and the ``policywatch`` command line."""
