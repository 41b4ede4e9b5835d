"""Routes that belong to no room: the root page, health, reference lists, API docs."""
