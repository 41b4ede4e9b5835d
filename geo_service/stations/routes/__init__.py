"""The stations room's HTTP routes beside ``router.py``."""
