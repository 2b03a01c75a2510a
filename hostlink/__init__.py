"""The top floor of provisioning: the link to the mail hosts. It builds each domain's document
(`snapshot`), pushes it (`push`), takes the agents' reports (`reports`), moves domains between hosts
(`moves`), runs the Celery tasks the agents and beat call (`tasks`), and holds the pack and domain
admin. It imports everything below it; nothing imports it."""
