"""The staff console (issue 26): people sign in, change passwords, manage accounts."""
