"""The courier phone app (issue 14): its page, and the offline snapshot it keeps.

The page is plain files (``static/``): no framework, no build step, no CDN, served
under ``/app/`` (``routes/shell.py``). It talks only to this service's JSON API
(``/v1/stations/nearest``, ``/v1/areas``, reports and confirmations) and, for weak
signal, keeps a compact snapshot of the stations around (``snapshot.py``) from which
``static/offline.js`` answers nearest on the phone.
"""
