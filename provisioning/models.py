"""The durable change record of each domain arrives with issue 3 (provisioning engine)."""
