"""The front's forms: a user's own account and the login (`account`), a domain's screens (`domain`),
its mailing lists (`lists`)."""
