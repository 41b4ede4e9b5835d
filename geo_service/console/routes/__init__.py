"""The console\x27s pages by topic: session, accounts, keys."""
