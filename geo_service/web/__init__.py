"""The HTTP layer: the app factory, the one router aggregator, dependencies, error
handlers, responses, security headers, OpenAPI and the server. Only this package and
the rooms' router modules import FastAPI or Starlette."""
