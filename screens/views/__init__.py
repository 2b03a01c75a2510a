"""Every page: the front door and the Espace Client (`client`), the login and a mailbox user's own
pages (`account`), a domain's main menu and quick box (`menu`), its POP accounts, catch-all,
forwards, robots, lists, list members, imports, moderation and audit log (one module each).
What every domain screen shares is in `screens.kit`."""
