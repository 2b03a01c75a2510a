"""The screens of mail: the login and a mailbox user's own pages (`account`), a domain's main menu
(`domain`), its POP accounts, catch-all, forwards and robots (one module each)."""
