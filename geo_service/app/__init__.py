"""The courier phone app (issue 14): a static page, its script and styles, served under
``/app/``.

The app is plain files (``static/``): no framework, no build step, no CDN. It
talks only to this service's JSON API (``/v1/stations/nearest``, ``/v1/areas``,
reports and confirmations), so everything it shows is what the API answers.
"""
