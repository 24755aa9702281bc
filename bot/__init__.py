"""The Telegram edge: the PTB application, the command table, the handlers (by audience) and
the replies they render. It reaches everything else through ``bot.context.BotContext``."""
