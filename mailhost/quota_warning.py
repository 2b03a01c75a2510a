"""What Dovecot's quota_warning runs when a mailbox crosses 80 % or 95 % of its quota: one warning
mail, in the mailbox's language, delivered to its INBOX.

    python3 -I quota_warning.py <dovecot.conf> <percent> <user> <quota_rule> [<language>]

Dovecot's `script` service (`service quota-warning`, mailhost.stack.templates) runs it as user mail,
with the arguments of the `quota_warning` setting that fired: the percent of that setting, the
mailbox (%u), its quota rule from the userdb (`*:bytes=N`) and its language (the userdb's
`panel_language`: the customer's, carried by the domain's document; fr, else English). Dovecot
fires a warning once, when a delivery takes the mailbox from under the threshold to over it
(several crossed at once: only the highest); it keeps no state, so nothing needs resetting when
the mailbox goes back under: the next crossing warns again.

The message goes through Dovecot's LDA with the quota not enforced (Dovecot's documented way for
quota warnings): it arrives even in a full mailbox, and never bounces, never reaches the
mailbox's Sieve script (no vacation reply to it, no forward of it).

Standard library only, no import of the agent: it runs under the system's python3, isolated, from
a copy beside Dovecot's config (`config.quota_warning_script`; the agent's own files may sit where
user mail cannot read). Every argument is checked before it reaches a header or a command line:
an address of the panel's own form, a percent and a byte count of digits, a known language. The
Subject is RFC 2047-encoded, the body UTF-8 quoted-printable.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
import subprocess
import sys
from email.message import EmailMessage

DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
# The thresholds Dovecot warns at (mailhost.stack.templates), highest first; the panel's list of
# POP accounts marks "near full" from the lowest (screens.tables.NEAR_FULL_PERCENT).
WARN_PERCENTS = (95, 80)
EX_USAGE, EX_TEMPFAIL = 64, 75
# The panel's rule for an address it holds (mail.validators), as the maps database stores it.
PANEL_LOCAL = re.compile(r"^(?!\.)(?!.*\.\.)[a-z0-9._+-]{1,64}(?<!\.)\Z")
PANEL_DOMAIN = re.compile(r"^(?=.{1,253}\Z)((?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)(?![0-9]+\Z)[a-z0-9-]{1,63}(?<!-)\Z")
QUOTA_RULE = re.compile(r"^\*:bytes=([0-9]{1,20})\Z")
# Never passed to Dovecot's LDA as a user's quota: the warning is let through whatever the fill.
NO_ENFORCING = "plugin/quota=count:User quota:noenforcing"
# User mail may not write Dovecot's log file nor reach its stats socket: the LDA logs to its stderr,
# which this script passes on to Dovecot's log when the delivery fails.
LDA_AS_MAIL = ("-o", "log_path=/dev/stderr", "-o", "info_log_path=/dev/stderr", "-o", "stats_writer_socket_path=")

TEXTS = {
    "en": {
        "subject": "Your mailbox {user} is {percent} % full",
        "body": (
            "Hello,\n\n"
            "Your mailbox {user} now holds {percent} % of its quota of {quota}.\n"
            "When it is full, the mail sent to you will be refused and returned to its senders.\n\n"
            "To free space: delete the messages you no longer need, empty the Trash and Junk folders, "
            "and save large attachments elsewhere. Your mail program can also keep a copy of your "
            "messages on your computer and delete them from the server (POP3, or an archive folder "
            "on your computer).\n"
            "If you need more space, ask the administrator of your domain for a larger quota.\n\n"
            "This message was sent automatically: please do not reply.\n"
        ),
    },
    "fr": {
        "subject": "Votre boîte {user} est pleine à {percent}\N{NO-BREAK SPACE}%",
        "body": (
            "Bonjour,\n\n"
            "Votre boîte aux lettres {user} occupe maintenant {percent}\N{NO-BREAK SPACE}% de son quota de {quota}.\n"
            "Lorsqu'elle sera pleine, les messages qui vous sont envoyés seront refusés et renvoyés "
            "à leurs expéditeurs.\n\n"
            "Pour libérer de la place\N{NO-BREAK SPACE}: supprimez les messages dont vous n'avez plus besoin, videz "
            "les dossiers Corbeille et Indésirables, et enregistrez ailleurs les pièces jointes "
            "volumineuses. Votre logiciel de messagerie peut aussi garder une copie de vos messages "
            "sur votre ordinateur et les effacer du serveur (POP3, ou un dossier d'archives local).\n"
            "S'il vous faut plus de place, demandez un quota plus grand à l'administrateur de votre "
            "domaine.\n\n"
            "Ce message est envoyé automatiquement\N{NO-BREAK SPACE}: merci de ne pas y répondre.\n"
        ),
    },
}
UNITS = {"en": ("bytes", "KB", "MB", "GB", "TB"), "fr": ("octets", "Ko", "Mo", "Go", "To")}


class Refused(ValueError):
    """An argument that must not reach the message or the LDA's command line."""


def check_user(user: str) -> str:
    local, at, domain = user.partition("@")
    if not at or not PANEL_LOCAL.match(local) or not PANEL_DOMAIN.match(domain):
        raise Refused(f"not a mailbox address: {user!r}")
    return user


def check_percent(percent: str) -> int:
    if not re.fullmatch(r"[0-9]{1,3}", percent) or not 0 < int(percent) <= 100:
        raise Refused(f"not a percent: {percent!r}")
    return int(percent)


def quota_bytes(rule: str) -> int:
    """The byte limit of a userdb quota rule (`*:bytes=N`); 0 when there is none."""
    found = QUOTA_RULE.match(rule)
    if not found:
        raise Refused(f"not a quota rule: {rule!r}")
    return int(found.group(1))


def language_of(value: str) -> str:
    """French for fr (fr-xx), English for anything else."""
    return "fr" if value.strip().lower().split("-")[0] == "fr" else "en"


def human_size(size: int, language: str) -> str:
    """`size` bytes as the panel shows a quota: 1,024-based units, one decimal at most."""
    units = UNITS[language]
    value = float(size)
    unit = 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    text = f"{value:.1f}".removesuffix(".0") if unit else str(size)
    if language == "fr":
        text = text.replace(".", ",")
    return f"{text}\N{NO-BREAK SPACE}{units[unit]}" if language == "fr" else f"{text} {units[unit]}"


def warning(user: str, percent: int, quota: int, language: str) -> EmailMessage:
    """The warning message for `user` (checked values only)."""
    texts = TEXTS[language]
    values = {"user": user, "percent": percent, "quota": human_size(quota, language)}
    message = EmailMessage(policy=email.policy.SMTP)
    domain = user.partition("@")[2]
    message["From"] = email.utils.formataddr(("", f"postmaster@{domain}"))
    message["To"] = user
    message["Subject"] = texts["subject"].format(**values)
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = email.utils.make_msgid("quota-warning", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["Precedence"] = "bulk"
    message.set_content(texts["body"].format(**values), charset="utf-8", cte="quoted-printable")
    message["Content-Language"] = language  # after set_content, which drops every Content- header
    return message


def main(argv: list[str]) -> int:
    if len(argv) not in (5, 6):
        print("usage: quota_warning.py DOVECOT_CONF PERCENT USER QUOTA_RULE [LANGUAGE]", file=sys.stderr)
        return EX_USAGE
    config, percent, user, rule = argv[1:5]
    language = language_of(argv[5] if len(argv) == 6 else "")
    try:
        message = warning(check_user(user), check_percent(percent), quota_bytes(rule), language)
    except Refused as refused:
        print(f"quota warning not sent: {refused}", file=sys.stderr)
        return EX_USAGE
    if not config.startswith("/"):
        print(f"quota warning not sent: not an absolute path: {config!r}", file=sys.stderr)
        return EX_USAGE
    done = subprocess.run(  # noqa: S603 - every argument checked above, no shell
        [DOVECOT_LDA, "-c", config, "-d", user, "-o", NO_ENFORCING, *LDA_AS_MAIL],
        input=message.as_bytes(), capture_output=True, check=False,
    )
    if done.returncode:
        print(f"quota warning for {user}: dovecot-lda exit {done.returncode}: "
              f"{done.stderr.decode(errors='replace').strip()}", file=sys.stderr)
        return EX_TEMPFAIL
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
