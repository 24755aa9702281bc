"""Delivery: rendering alerts and digests as Telegram HTML, the notices that go through the
outbox, and the one notifier that sends, paced, through a ``Sender`` (Telegram or the console)."""
