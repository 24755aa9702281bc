"""The bot's command table: the one list that help, setMyCommands and the README follow."""

from __future__ import annotations

from dataclasses import dataclass

EVERYONE = "everyone"
EDITOR = "editor"
ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Command:
    """A bot command: its name, arguments, one-line description and who may use it."""

    name: str
    args: str
    description: str
    access: str = EVERYONE

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".strip()


COMMANDS: tuple[Command, ...] = (
    Command("start", "", "register this chat and pick themes"),
    Command("help", "", "every command"),
    Command("themes", "", "the themes and your subscriptions"),
    Command(
        "subscribe",
        "[theme]",
        "follow a theme (no argument: a keyboard); sent in a forum topic, its alerts go there",
    ),
    Command("unsubscribe", "[theme]", "stop following a theme"),
    Command(
        "latest", "[theme] [n]", "the newest matched events, each with its sources (n up to 20)"
    ),
    Command("policy", "[us|cn] [n]", "the newest regulatory documents"),
    Command(
        "export",
        "[theme] [days]",
        "the matched items of the last days (7, up to 90) as a spreadsheet (CSV)",
    ),
    Command("search", "<words>", "search stored items (English or Chinese)"),
    Command("upcoming", "", "effective dates and comment deadlines in the next 30 days"),
    Command("digest", "off | daily HH:MM | weekly <day> HH:MM", "digest schedule"),
    Command("timezone", "<Area/City>", "your time zone, e.g. Asia/Shanghai"),
    Command("mute", "<duration> | off", "pause alerts, e.g. 8h or 2d"),
    Command(
        "quiet",
        "HH:MM-HH:MM [except <theme>…] | off",
        "quiet hours every day in your time zone, e.g. 22:00-07:00: alerts wait until they end, "
        "except those of the themes named",
    ),
    Command(
        "alerts",
        "all | sure",
        "instant alerts for every match, or only where the watchlist and the model agree",
    ),
    Command("settings", "", "your settings"),
    Command("sources", "", "source health"),
    Command("entity", "<name>", "is an organisation on a US screening list? since when, why"),
    Command(
        "names",
        "<name> | added | add <name>; <other name>… | drop <name> | remove <name>",
        "the names one organisation is known by (brands, former, Chinese); editors add, drop "
        "and remove",
    ),
    Command(
        "event",
        "<id> | merge <a> <b> | split <item>",
        "an event's timeline; editors merge or split events",
    ),
    Command(
        "watch",
        "list [theme] | add <theme> <rule> | remove <theme> <rule> | test <theme> <rule> "
        "| stats [theme] | model <theme> [on|off|rollback|use N] "
        "| org add|remove|list [theme:<slug>] <name>[; alias…]",
        "edit and try watchlists, feedback precision, the learned model (editors); watch "
        "organisations (everyone for themselves, a group by its admins; editors for themes)",
    ),
    Command(
        "theme",
        "add <slug> <title> | remove <slug> | priority <slug> instant|digest",
        "add, remove or reprioritize themes",
        EDITOR,
    ),
    Command(
        "source",
        "list | add <kind> <url> [name] | pause <name> | resume <name> "
        "| digest <name> [theme] | instant <name> [theme] | trust <name> <theme> "
        "| untrust <name> <theme> | expect <name> <period>|off",
        "manage sources; a noisy source's matches can wait for digests; how long a source "
        "may bring nothing new before admins hear it is quiet",
        ADMIN,
    ),
    Command("admin", "grant <user id> editor | revoke <user id>", "grant or revoke editors", ADMIN),
    Command("stats", "", "counts of items, matches, deliveries and subscribers", ADMIN),
    Command("broadcast", "<text>", "send a message to every subscriber", ADMIN),
)


def command(name: str) -> Command:
    """The command called ``name`` (KeyError when there is none)."""
    for cmd in COMMANDS:
        if cmd.name == name:
            return cmd
    raise KeyError(name)
