"""The application shell: settings, CLI, composition root, Telegram bot, scheduler ticks."""
