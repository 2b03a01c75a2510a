"""The screens of a domain's mailing lists ("Listes de diffusion"), on mail's domain screens."""
